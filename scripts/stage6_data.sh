#!/usr/bin/env bash
# Training data of stage 6 (issue 35, docs/real-rain.md "Make training data from your own rain
# video"), seeded: the same files on every machine. Needs the stage-5 data first
# (scripts/stage5_data.sh: rendered scenes and the real clips yard + street_r2). Writes under
# OUT (default out/stage6):
#   OUT/bank/ (or $BANK)       real rain layers lifted off yard.mp4 (200 frames) and
#                              night_street.mp4 (`memderain rain-layers`), + its preview PNG
#   OUT/synth-RL<k>/           `memderain synth --rain real-layers`: the bank composited onto
#                              the 180 training photos, 6 consecutive layers of one clip a scene
#                              (RL_SPECS: name:rain-setting:seed)
#   OUT/train/<name>-<scene>   links: the stage-5 rendered scenes plus the real-layer scenes
#   OUT/real/                  real clips with their median as target: yard, street_r2 (from
#                              stage 5) and night_street
# news_test1.mp4 is never used: it is the held-out real-rain check. news_test2.mp4 pans
# (34 px over the clip at 960 px, measured), so it is no static clip for the bank.
set -euo pipefail
OUT=${1:-out/stage6}
S5=${S5:-out/stage5}
SHARED=${SHARED:-../shared/data}
BG=$SHARED/backgrounds/train
BANK=${BANK:-$OUT/bank}
# default: real layers at gain 1.5-3 (probe p2, the best of the probes in docs/real-rain.md)
RL_SPECS=${RL_SPECS:-"rlg:$OUT/rl-gain.yaml:22"}
RENDERED=${RENDERED:-"mixed-streaks heavy-streaks v2-timelapse"}
[ -d "$S5/synth-v2-timelapse/frames" ] || { echo "run scripts/stage5_data.sh first"; exit 1; }
mkdir -p "$OUT"
[ -f "$OUT/rl-gain.yaml" ] || printf 'preset: real-layers\ngain: [1.5, 3.0]\n' > "$OUT/rl-gain.yaml"
[ -f "$BANK/bank.json" ] ||
    memderain rain-layers "$SHARED/real_video/yard.mp4" "$SHARED/real_video/night_street.mp4" \
        -o "$BANK" --max-frames 200 --preview "$BANK-preview.png" --clean "$BG" --overwrite
rm -rf "$OUT/train"  # links are rebuilt every time (cheap), so the mixture is what is listed
mkdir -p "$OUT/train" "$OUT/real"
for spec in $RL_SPECS; do
    IFS=: read -r name rain seed <<<"$spec"
    [ -f "$OUT/synth-$name/synth.json" ] ||
        memderain synth "$BG" "$OUT/synth-$name" --rain "$rain" --bank "$BANK" --frames 6 \
            --seed "$seed" --workers 2 --overwrite
    for scene in "$OUT/synth-$name/frames"/*/; do
        s=$(basename "$scene")
        ln -sfn "$(realpath "$scene")" "$OUT/train/$name-$s"
    done
done
for preset in $RENDERED; do
    for scene in "$S5/synth-$preset/frames"/*/; do
        s=$(basename "$scene")
        ln -sfn "$(realpath "$scene")" "$OUT/train/$preset-$s"
    done
done
for clip in yard street_r2; do
    [ -e "$OUT/real/$clip" ] || ln -sfn "$(realpath "$S5/real/$clip")" "$OUT/real/$clip"
done
[ -d "$OUT/real/night_street" ] ||
    memderain extract-frames "$SHARED/real_video/night_street.mp4" "$OUT/real" --count 49
echo "stage 6 data: $(ls "$OUT/train" | wc -l) scenes in $OUT/train, $(ls "$OUT/real" | wc -l) real clips in $OUT/real"
