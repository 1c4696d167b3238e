/* Clocks and timestamp formatting. */
#include "lib/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t clock_ns (clockid_t id)
{
  struct timespec ts;
  clock_gettime (id, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t bclock_mono_ns (void)
{
  return clock_ns (CLOCK_MONOTONIC);
}

int64_t bclock_real_ns (void)
{
  return clock_ns (CLOCK_REALTIME);
}

void bclock_rfc3339 (int64_t real_ns, char out[BCLOCK_RFC3339_LEN])
{
  time_t secs = (time_t)(real_ns / 1000000000LL);
  long nsec = (long)(real_ns % 1000000000LL);
  if (nsec < 0)
    {
      nsec += 1000000000L;
      secs--;
    }
  struct tm tm;
  gmtime_r (&secs, &tm);
  size_t n = strftime (out, BCLOCK_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (out + n, BCLOCK_RFC3339_LEN - n, ".%09ldZ", nsec);
}

int bclock_parse_rfc3339 (const char *s, int64_t *real_ns)
{
  struct tm tm;
  memset (&tm, 0, sizeof tm);
  const char *p = strptime (s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (p == NULL)
    return -1;
  int64_t frac = 0;
  if (*p == '.')
    {
      int digits = 0;
      for (p++; *p >= '0' && *p <= '9'; p++, digits++)
        if (digits < 9)
          frac = frac * 10 + (*p - '0');
      if (digits == 0)
        return -1;
      for (; digits < 9; digits++)
        frac *= 10;
    }
  int64_t offset = 0;
  if (*p == 'Z' || *p == 'z')
    p++;
  else if (*p == '+' || *p == '-')
    {
      int hh, mm;
      if (sscanf (p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
        return -1;
      offset = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
      p += 6;
    }
  else
    return -1;
  if (*p != '\0')
    return -1;
  time_t secs = timegm (&tm);
  *real_ns = ((int64_t)secs - offset) * 1000000000LL + frac;
  return 0;
}
