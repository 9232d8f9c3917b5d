#!/bin/sh
# A training job that trains Atelier's own gradient-boosted trees on the "train" channel and writes
# a deployable pipeline (preprocessing + model + label decoding) into SM_MODEL_DIR, so that
# `--register-model` makes it a model version an endpoint can serve.
#
#   atelier jobs run --kind training --input train=runs:/<run>/output/clean \
#       --hyperparameter learning_rate=0.1 --register-model points -- sh train_gbm.sh label
set -e
target="${1:-label}"
train=$(ls "$SM_CHANNEL_TRAIN"/*.csv | grep -v 'test\.csv$' | head -n 1)
echo "training on $train, target $target, learning rate ${SM_HP_LEARNING_RATE:-0.1}"
"$ATELIER_BIN" train "$train" --target "$target" \
    --param learning_rate="${SM_HP_LEARNING_RATE:-0.1}" \
    --output "$SM_MODEL_DIR/pipeline.atelier"
echo "wrote $SM_MODEL_DIR/pipeline.atelier"
