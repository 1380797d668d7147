#!/usr/bin/env bash
# Measures the shipped default model for MODEL_CARD.md on held-out synthetic test scenes (the 69
# test backgrounds, never trained on; 2 frames each) with three rain settings: `mixed-streaks`
# (the training streaks, no veil/lighting change; seed 1), `mixed` (the training rain; seed 1)
# and the unseen `heldout` rain (seed 0). Identity baseline vs the model, Y and RGB PSNR/SSIM
# (`memderain eval` + `memderain report`), plus the picture grids.
#   scripts/model_card.sh            # ~12 min on 2 CPU cores; writes docs/results/model_card/
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-out/model-card}
DEST=${DEST:-docs/results/model_card}
WEIGHTS=${WEIGHTS:-}          # default: the shipped model
mkdir -p "$WORK" "$DEST"
w=(); [ -n "$WEIGHTS" ] && w=(--weights "$WEIGHTS")
for spec in mixed-streaks:1 mixed:1 heldout:0; do
    rain=${spec%:*}; seed=${spec#*:}
    [ -d "$WORK/test-$rain" ] || memderain synth "$SHARED/backgrounds/test" "$WORK/test-$rain" \
        --rain "$rain" --frames 2 --seed "$seed"
done
for rain in mixed-streaks mixed heldout; do
    memderain eval --data "$WORK/test-$rain" --baseline identity --dataset "test-$rain" \
        --out "$WORK/runs/$rain-identity" --overwrite --quiet
    memderain eval --data "$WORK/test-$rain" "${w[@]}" --name memderain_default \
        --dataset "test-$rain" --out "$WORK/runs/$rain-default" --overwrite --quiet
done
memderain report "$WORK/runs" --layout table2 --space y --out "$DEST/table_y.md" --overwrite
memderain report "$WORK/runs" --layout table2 --space rgb --out "$DEST/table_rgb.md" --overwrite
memderain visualize grid "${w[@]}" -o "$DEST" --name synthetic_grid.png --overwrite \
    "$WORK"/test-mixed-streaks/frames/set14_011/t000.png \
    "$WORK"/test-mixed-streaks/frames/bsd100_017/t000.png \
    "$WORK"/test-heldout/frames/set5_003/t000.png \
    --clean "$WORK"/test-mixed-streaks/clean/set14_011.png \
    "$WORK"/test-mixed-streaks/clean/bsd100_017.png "$WORK"/test-heldout/clean/set5_003.png
if [ -d "$SHARED/real" ]; then
    memderain visualize grid "${w[@]}" -o "$DEST" --name real_grid.png --overwrite \
        "$SHARED"/real/real_3.jpg "$SHARED"/real/real_13.jpg "$SHARED"/real/real_21.jpg
fi
cat "$DEST/table_y.md" "$DEST/table_rgb.md"
