/* Container specs: Berth's hardened default (the parse of the default config.json, so the
 * library and `berth-runtime spec` share one definition) and freeing a spec. */
#include "runtime/runtime.h"

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <errno.h>
#include <stdlib.h>

/* Replaces key in obj with item (taking ownership); false on allocation failure. */
static bool replace_item (cJSON *obj, const char *key, cJSON *item)
{
  if (item == NULL)
    return false;
  if (cJSON_GetObjectItemCaseSensitive (obj, key) == NULL)
    return cJSON_AddItemToObject (obj, key, item);
  return cJSON_ReplaceItemInObjectCaseSensitive (obj, key, item);
}

int rt_spec_new_default (const char *rootfs, char *const *args, struct rt_spec **out, berr **err)
{
  _cleanup_json_ cJSON *cfg = rt_oci_default_config ();
  if (cfg == NULL)
    return berr_make (err, ENOMEM, "default spec: out of memory");
  cJSON *root = cJSON_GetObjectItemCaseSensitive (cfg, "root");
  cJSON *proc = cJSON_GetObjectItemCaseSensitive (cfg, "process");
  if (!replace_item (root, "path", cJSON_CreateString (rootfs)))
    return berr_make (err, ENOMEM, "default spec: out of memory");
  if (args != NULL)
    {
      cJSON *argv = cJSON_CreateArray ();
      for (size_t i = 0; argv && args[i]; i++)
        if (!cJSON_AddItemToArray (argv, cJSON_CreateString (args[i])))
          {
            cJSON_Delete (argv);
            argv = NULL;
          }
      if (!replace_item (proc, "args", argv))
        return berr_make (err, ENOMEM, "default spec: out of memory");
    }
  /* A relative rootfs is taken relative to the working directory. */
  if (rt_spec_from_oci (cfg, ".", out, err) < 0)
    return berr_wrap (err, "default spec");
  return 0;
}

static void process_free (struct rt_process *p)
{
  strv_free (p->args);
  strv_free (p->env);
  free (p->cwd);
  free (p->groups);
  free (p->user);
  free (p->rlimits);
}

void rt_spec_free (struct rt_spec *spec)
{
  if (spec == NULL)
    return;
  free (spec->rootfs);
  free (spec->hostname);
  process_free (&spec->process);
  for (int i = 0; i < RT_NS__COUNT; i++)
    free (spec->ns[i].path);
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      free (spec->mounts[i].destination);
      free (spec->mounts[i].type);
      free (spec->mounts[i].source);
      free (spec->mounts[i].data);
    }
  free (spec->mounts);
  strv_free (spec->masked_paths);
  strv_free (spec->readonly_paths);
  for (size_t i = 0; i < spec->n_devices; i++)
    free (spec->devices[i].path);
  free (spec->devices);
  for (size_t i = 0; i < spec->n_sysctls; i++)
    {
      free (spec->sysctls[i].key);
      free (spec->sysctls[i].value);
    }
  free (spec->sysctls);
  if (spec->seccomp)
    cJSON_Delete (spec->seccomp);
  free (spec->cgroup.path);
  free (spec);
}
