"""How interlock starts LocalStack (tests/localstack.py and .ci/localstack-setup.sh both run this
with the LocalStack venv's Python): `-m localstack.runtime.main` after marking s3.<LOCALSTACK_HOST>
unresolvable (no DNS server is asked), with S3's object data in this instance's TMPDIR, and
os._exit once its runtime has shut down (skipping ~3 s of interpreter finalization)."""

import os
import runpy
import sys

import localstack.utils.aws.aws_stack as s

s.CACHE_S3_HOSTNAME_DNS_STATUS = False
import localstack.services.s3.provider as s3p  # noqa: E402 - after the patch above

s3p.DEFAULT_S3_TMP_DIR = os.path.join(os.environ["TMPDIR"], "s3-storage")
code = 0
try:
    runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
except BaseException:
    import traceback

    traceback.print_exc()
    code = 1
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
