#!/usr/bin/env bash
# Measures a model for MODEL_CARD.md on held-out synthetic test scenes: the 69 test backgrounds
# (../shared/data/backgrounds/test, never trained on), 2 frames each, with the fixed test rain
# presets (docs/data.md): test-light, test-heavy, test-unseen (rain engine v2), heldout and
# mixed-streaks (engine v1). Each is scored for the rainy input (identity), the three trivial
# 3x3 filters (median, minimum, opening) and the model: Y and RGB PSNR/SSIM (`memderain eval`
# + `memderain report`). Then the picture grids; the real-photo grid gets a column with MOSS's
# outputs when ../shared/data/real_moss is there.
#   scripts/model_card.sh            # ~15 min on 2 CPU cores; writes docs/results/model_card/
#   WEIGHTS=runs/x/best.pt NAME=x DEST=/tmp/card scripts/model_card.sh   # another checkpoint
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-out/model-card}
DEST=${DEST:-docs/results/model_card}
WEIGHTS=${WEIGHTS:-}          # default: the shipped model
NAME=${NAME:-memderain_default}
SETS=${SETS:-"test-light:0 test-heavy:0 test-unseen:0 heldout:0 mixed-streaks:1"}
BASELINES=${BASELINES:-"identity median3 min3 opening3"}
mkdir -p "$WORK" "$DEST"
w=(); [ -n "$WEIGHTS" ] && w=(--weights "$WEIGHTS")
for spec in $SETS; do
    rain=${spec%:*}; seed=${spec#*:}; ds=test-${rain#test-}
    # synth.json is written last: its absence means an interrupted render, redone from scratch
    [ -f "$WORK/$ds/synth.json" ] || memderain synth "$SHARED/backgrounds/test" "$WORK/$ds" \
        --rain "$rain" --frames 2 --seed "$seed" --overwrite
done
rm -rf "$WORK/runs"; mkdir -p "$WORK/runs" "$WORK/baselines"
for spec in $SETS; do
    rain=${spec%:*}; ds=test-${rain#test-}
    for b in $BASELINES; do  # baselines do not depend on the model: computed once, reused
        [ -f "$WORK/baselines/$rain-$b/summary.json" ] || memderain eval \
            --data "$WORK/$ds" --baseline "$b" --dataset "$ds" \
            --out "$WORK/baselines/$rain-$b" --overwrite --quiet
        cp -r "$WORK/baselines/$rain-$b" "$WORK/runs/"
    done
    memderain eval --data "$WORK/$ds" "${w[@]}" --name "$NAME" \
        --dataset "$ds" --out "$WORK/runs/$rain-model" --overwrite --quiet
done
memderain report "$WORK/runs" --layout table2 --space y --out "$DEST/table_y.md" --overwrite
memderain report "$WORK/runs" --layout table2 --space rgb --out "$DEST/table_rgb.md" --overwrite
memderain visualize grid "${w[@]}" -o "$DEST" --name synthetic_grid.png --overwrite \
    "$WORK"/test-light/frames/set14_011/t000.png \
    "$WORK"/test-heavy/frames/bsd100_017/t000.png \
    "$WORK"/test-unseen/frames/set5_003/t000.png \
    "$WORK"/test-heldout/frames/set5_003/t000.png \
    --clean "$WORK"/test-light/clean/set14_011.png \
    "$WORK"/test-heavy/clean/bsd100_017.png "$WORK"/test-unseen/clean/set5_003.png \
    "$WORK"/test-heldout/clean/set5_003.png
if [ -d "$SHARED/real" ]; then
    peer=(); [ -d "$SHARED/real_moss" ] && peer=(--peer "$SHARED/real_moss" --peer-label "MOSS (CVPR 2021)")
    memderain visualize grid "${w[@]}" "${peer[@]}" -o "$DEST" --name real_grid.png --overwrite \
        "$SHARED"/real/real_3.jpg "$SHARED"/real/real_13.jpg "$SHARED"/real/real_21.jpg \
        "$SHARED"/real/real_26.jpg "$SHARED"/real/real_45.jpg "$SHARED"/real/real_8.jpg
fi
cat "$DEST/table_y.md" "$DEST/table_rgb.md"
