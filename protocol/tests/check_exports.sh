#!/bin/sh
# Checks the golden export files (protocol/tests/data/exports/*.json, which the tests in
# protocol/src/export.rs compare the exporter's output with) against the vendors' own SDK types.
#
# Usage: protocol/tests/check_exports.sh PATH/TO/check_exports.py [CHECKER OPTIONS...]
#        EXPORTS_DIR=DIR checks DIR's files instead (the SDK's exports, written by
#        `ATR_SDK_EXPORTS_DIR=DIR cargo test -p atr-tool --test schemas`).
#        (CI, from the workspace root: protocol/tests/check_exports.sh ../shared/tools/check_exports.py)
# The checker needs the SDKs: python3 -m venv .venv-formats &&
#   .venv-formats/bin/pip install openai anthropic mcp google-genai pydantic
# then set PYTHON=.venv-formats/bin/python (default: python3). Extra arguments (e.g. --werror)
# go to every checker run. Exits 1 if any file fails.
set -eu

checker=${1:?usage: $0 PATH/TO/check_exports.py [checker options...]}
shift
python=${PYTHON:-python3}
dir=${EXPORTS_DIR:-$(cd "$(dirname "$0")/data/exports" && pwd)}

status=0
for pair in \
    openai:openai.json \
    openai:openai-strict.json \
    openai-responses:openai-responses.json \
    openai-responses:openai-responses-strict.json \
    anthropic:anthropic.json \
    mcp:mcp.json \
    gemini:gemini.json; do
    format=${pair%%:*}
    file=${pair#*:}
    # The SDK's exports include a strict Responses file; the golden files do not.
    [ -f "$dir/$file" ] || [ "$file" != openai-responses-strict.json ] || continue
    echo "== $format $file"
    "$python" "$checker" "$@" "$format" "$dir/$file" || status=1
done
exit "$status"
