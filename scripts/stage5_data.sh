#!/usr/bin/env bash
# Training data of stage 5 (preset default-stage5, MODEL_CARD.md "Stage 5"), seeded: the same
# files on every machine. Writes under OUT (default out/stage5):
#   OUT/synth-<preset>/     `memderain synth` of the training backgrounds, one rain preset each
#   OUT/train/<preset>-<scene> -> links to those scenes: the mixture, one root for --data
#   OUT/real/yard, OUT/real/street_r2   real static-camera rain (data.real_root)
#   OUT/val-v2t/            validation scenes (training backgrounds, another seed)
# news_test1.mp4 is never used here: it is the held-out real-rain check of every model.
# About 10 minutes on 2 CPU cores.
set -euo pipefail
OUT=${1:-out/stage5}
SHARED=${SHARED:-../shared/data}
BG=$SHARED/backgrounds/train
rm -rf "$OUT/train"  # the links are rebuilt every time (cheap), so the mixture is what is listed
mkdir -p "$OUT/train" "$OUT/real"
seed=0
for preset in mixed-streaks heavy-streaks v2-timelapse; do
    seed=$((seed + 1))
    [ -f "$OUT/synth-$preset/synth.json" ] ||
        memderain synth "$BG" "$OUT/synth-$preset" --rain "$preset" --frames 6 --seed "$seed" \
            --workers 2
    for scene in "$OUT/synth-$preset/frames"/*/; do
        name=$(basename "$scene")
        ln -sfn "../synth-$preset/frames/$name" "$OUT/train/$preset-$name"
    done
done
[ -d "$OUT/real/yard" ] ||
    memderain extract-frames "$SHARED/real_video/yard.mp4" "$OUT/real" --count 60
if [ ! -d "$OUT/real/street_r2" ]; then
    mkdir -p "$OUT/real/street_r2"
    cp "$SHARED/real_video/street_r2"/* "$OUT/real/street_r2/"
fi
[ -f "$OUT/val-v2t/synth.json" ] ||
    memderain synth "$BG" "$OUT/val-v2t" --rain v2-timelapse --frames 1 --seed 7 --limit 40
echo "stage 5 data: $(ls "$OUT/train" | wc -l) rendered scenes in $OUT/train, real clips in $OUT/real"
