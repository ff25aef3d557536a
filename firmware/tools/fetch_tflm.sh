#!/usr/bin/env bash
# Fetches TFLM at the pinned commit plus its third-party code, placed exactly where
# TFLM's Makefile download step puts it for TARGET=cortex_m_generic
# OPTIMIZED_KERNEL_DIR=cmsis_nn (third_party.inc, ext_libs/cmsis_download.sh,
# ext_libs/cmsis_nn_download.sh), by running TFLM's own download scripts (which
# check the MD5 sums). Needs network access, curl, wget, unzip, git, patch.
#
#   firmware/tools/fetch_tflm.sh [DEST]      (default ~/.cache/rnnpool-tflm/tflm-<commit>)
#   export TFLM_DIR=DEST
#
# Prints DEST on stdout. Does nothing if DEST already holds the tree.
set -euo pipefail
COMMIT=90b983c2b3f1480642e040bbd2ddb37b998f3424
DEST=${1:-${RNNPOOL_TFLM_CACHE:-$HOME/.cache/rnnpool-tflm}/tflm-$COMMIT}
if [ -f "$DEST/.tflm_commit" ]; then echo "$DEST"; exit 0; fi
[ -e "$DEST" ] && { echo "$DEST exists but is not a fetched TFLM tree; remove it" >&2; exit 1; }
PARTIAL="$DEST.partial.$$"
trap 'rm -rf "$PARTIAL"' EXIT
mkdir -p "$PARTIAL"
echo "fetching tflite-micro $COMMIT" >&2
curl -LsSf "https://github.com/tensorflow/tflite-micro/archive/$COMMIT.tar.gz" | tar -xz -C "$PARTIAL" --strip-components=1
cd "$PARTIAL"
M=tensorflow/lite/micro/tools/make
D=$M/downloads
mkdir -p "$D"
# The Makefile's THIRD_PARTY_DOWNLOADS (third_party.inc): URL, MD5, folder, optional patch.
eval "$(grep -E '^(GEMMLOWP|RUY|FLATBUFFERS|KISSFFT)_(URL|MD5|PATCH_PATH) *:?=' $M/third_party_downloads.inc \
        | sed -E 's/ *:?= */=/')"
bash $M/download_and_extract.sh "$GEMMLOWP_URL" "$GEMMLOWP_MD5" "$D/gemmlowp" >&2
bash $M/download_and_extract.sh "$RUY_URL" "$RUY_MD5" "$D/ruy" >&2
bash $M/download_and_extract.sh "$FLATBUFFERS_URL" "$FLATBUFFERS_MD5" "$D/flatbuffers" patch_file "$FLATBUFFERS_PATCH_PATH" >&2
bash $M/download_and_extract.sh "$KISSFFT_URL" "$KISSFFT_MD5" "$D/kissfft" patch_file "$KISSFFT_PATCH_PATH" >&2
# cortex_m_generic_makefile.inc and ext_libs/cmsis_nn.inc: CMSIS_6 (+ Cortex_DFP) and CMSIS-NN.
for script in cmsis_download.sh cmsis_nn_download.sh; do
  result=$(bash "$M/ext_libs/$script" "$D" "")
  [ "$result" = SUCCESS ] || { echo "$script failed: $result" >&2; exit 1; }
done
# TFLM's Makefile clones pigweed (its tests' tooling, not part of the library) whenever this
# folder is missing, even when it only lists sources; the toolkit needs none of it.
mkdir -p "$D/pigweed"
echo "$COMMIT" > .tflm_commit
cd - >/dev/null
mkdir -p "$(dirname "$DEST")"
mv "$PARTIAL" "$DEST"
trap - EXIT
echo "$DEST"
