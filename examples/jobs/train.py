"""A training job written for SageMaker, unchanged: channels from SM_CHANNEL_<NAME>, the model
into SM_MODEL_DIR, hyperparameters from input/config/hyperparameters.json; metrics through the
mlflow client into the job's run (MLFLOW_RUN_ID).

A logistic regression trained epoch by epoch with scikit-learn's SGDClassifier, so that the
training and validation loss are logged as curves.

    atelier jobs run --kind training --name sgd --input train=runs:/<run>/output/clean \
        --hyperparameter epochs=20 --hyperparameter alpha=0.0001 -- python train.py --target label
"""

import argparse
import glob
import json
import os
import pickle

import mlflow
import numpy as np
import pandas as pd
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.preprocessing import StandardScaler

p = argparse.ArgumentParser()
p.add_argument("--target", default="label")
args = p.parse_args()

config_dir = os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")
with open(os.path.join(config_dir, "hyperparameters.json")) as f:
    hps = json.load(f)
epochs = int(hps.get("epochs", 10))
alpha = float(hps.get("alpha", 1e-4))
lr = float(hps.get("lr", 0.01))


def read(channel):
    d = os.environ.get(f"SM_CHANNEL_{channel.upper()}")
    files = sorted(glob.glob(os.path.join(d, "**", "*.csv"), recursive=True)) if d else []
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True) if files else None


train = read("train")
if train is None:
    raise SystemExit("no training data in SM_CHANNEL_TRAIN")
# a processing job's output folder holds train.csv and test.csv: split them apart
test = None
train_files = sorted(glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "**", "*.csv"), recursive=True))
if any(f.endswith("test.csv") for f in train_files):
    test = pd.concat([pd.read_csv(f) for f in train_files if f.endswith("test.csv")], ignore_index=True)
    train = pd.concat([pd.read_csv(f) for f in train_files if not f.endswith("test.csv")], ignore_index=True)
if read("test") is not None:
    test = read("test")
if test is None:
    test = train.sample(frac=0.2, random_state=0)
    train = train.drop(test.index)

features = [c for c in train.columns if c != args.target]
scaler = StandardScaler().fit(train[features])
x, y = scaler.transform(train[features]), train[args.target].to_numpy()
xv, yv = scaler.transform(test[features]), test[args.target].to_numpy()
classes = np.unique(np.concatenate([y, yv]))

model = SGDClassifier(loss="log_loss", alpha=alpha, learning_rate="constant", eta0=lr, random_state=0)
with mlflow.start_run():
    for epoch in range(epochs):
        model.partial_fit(x, y, classes=classes)
        loss = log_loss(y, model.predict_proba(x), labels=classes)
        val_loss = log_loss(yv, model.predict_proba(xv), labels=classes)
        mlflow.log_metrics({"loss": loss, "val_loss": val_loss}, step=epoch)
        print(f"epoch {epoch}: loss {loss:.4f} val_loss {val_loss:.4f}", flush=True)
    acc = accuracy_score(yv, model.predict(xv))
    mlflow.log_metric("val_accuracy", acc)
    print(f"validation accuracy {acc:.3f}", flush=True)

model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
with open(os.path.join(model_dir, "model.pkl"), "wb") as f:
    pickle.dump({"scaler": scaler, "model": model, "features": features}, f)
with open(os.path.join(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"), "metrics.json"), "w") as f:
    json.dump({"val_accuracy": acc}, f)
