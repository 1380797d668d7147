#!/usr/bin/env bash
# Measures the shipped default model for MODEL_CARD.md: held-out synthetic test scenes (test
# backgrounds, never trained on) with the training rain distribution and with the unseen
# `heldout` rain, identity baseline vs the model, Y and RGB PSNR/SSIM, plus the picture grids.
#   scripts/model_card.sh            # ~10 min on 2 CPU cores; writes docs/results/model_card/
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-out/model-card}
DEST=${DEST:-docs/results/model_card}
WEIGHTS=${WEIGHTS:-}          # default: the shipped model
mkdir -p "$WORK" "$DEST"
w=(); [ -n "$WEIGHTS" ] && w=(--weights "$WEIGHTS")
[ -d "$WORK/test-mixed" ] || memderain synth "$SHARED/backgrounds/test" "$WORK/test-mixed" \
    --rain mixed --frames 2 --seed 1
[ -d "$WORK/test-heldout" ] || memderain synth "$SHARED/backgrounds/test" "$WORK/test-heldout" \
    --rain heldout --frames 2 --seed 0
for rain in mixed heldout; do
    memderain eval --data "$WORK/test-$rain" --baseline identity --dataset "test-$rain" \
        --out "$WORK/runs/$rain-identity" --overwrite --quiet
    memderain eval --data "$WORK/test-$rain" "${w[@]}" --name memderain_default \
        --dataset "test-$rain" --out "$WORK/runs/$rain-default" --overwrite --quiet
done
memderain report "$WORK/runs" --layout table2 --space y --out "$DEST/table_y.md" --overwrite
memderain report "$WORK/runs" --layout table2 --space rgb --out "$DEST/table_rgb.md" --overwrite
memderain visualize grid "${w[@]}" -o "$DEST" --name synthetic_grid.png --overwrite \
    "$WORK"/test-mixed/frames/set14_011/t000.png "$WORK"/test-mixed/frames/bsd100_017/t000.png \
    "$WORK"/test-heldout/frames/set5_003/t000.png \
    --clean "$WORK"/test-mixed/clean/set14_011.png "$WORK"/test-mixed/clean/bsd100_017.png \
    "$WORK"/test-heldout/clean/set5_003.png
if [ -d "$SHARED/real" ]; then
    memderain visualize grid "${w[@]}" -o "$DEST" --name real_grid.png --overwrite \
        "$SHARED"/real/real_3.jpg "$SHARED"/real/real_13.jpg "$SHARED"/real/real_21.jpg
fi
cat "$DEST/table_y.md" "$DEST/table_rgb.md"
