/* The floor under berth-agent's VmRSS (figure 12a): a process linked against exactly the shared
 * libraries berth-agent needs (bench/node.sh passes them from the agent's DT_NEEDED list, with
 * --no-as-needed), that initialises libcurl as the agent must and then waits to be measured.
 * Whatever it maps and touches, the agent cannot avoid while it links those libraries.
 * Usage: libfloor (runs until killed) */
#include <curl/curl.h>
#include <unistd.h>

int main (void)
{
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return 1;
  for (;;)
    pause ();
}
