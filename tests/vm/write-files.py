#!/usr/bin/env python3
# Applies the write_files of a cloud-config file with cloud-init's own module, as cloud-init does
# at boot (package-check.sh's ECS-style step: bookworm's cloud-init has no `single --file`).
import inspect
import sys

import yaml
from cloudinit.config import cc_write_files

with open(sys.argv[1]) as f:
    cfg = yaml.safe_load(f)
files = [f for f in cfg.get("write_files", []) if not f.get("defer", False)]
params = inspect.signature(cc_write_files.write_files).parameters
if "owner" in params:
    cc_write_files.write_files("write_files", files, "root:root")
else:
    cc_write_files.write_files("write_files", files)
print("wrote", ", ".join(f["path"] for f in files))
