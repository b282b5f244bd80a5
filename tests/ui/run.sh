#!/bin/sh
# run.sh HMMBA CONFIG_DIR FIXTURES_DIR ARTIFACTS_DIR: the playground's
# browser test (ui_test.mjs), for meson test ui. Exits 77 (meson: skipped)
# with the reason when node, chromium or the test's npm packages are
# missing: deploy/quickstart.sh test and .ci/run install them (apt-get
# install chromium nodejs npm; npm ci in tests/ui).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed (apt-get install nodejs npm)"
    exit 77
fi
if [ ! -x "$chromium" ]; then
    echo "SKIP: $chromium is not installed (apt-get install chromium)"
    exit 77
fi
if [ ! -d "$here/node_modules/puppeteer-core" ]; then
    echo "SKIP: puppeteer-core is not installed (cd tests/ui && npm ci)"
    exit 77
fi
exec node "$here/ui_test.mjs" "$@"
