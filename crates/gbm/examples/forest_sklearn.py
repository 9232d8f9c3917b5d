"""scikit-learn side of the forest comparison in ../README.md.

python3 -m venv /tmp/rfvenv && /tmp/rfvenv/bin/pip install scikit-learn pandas
/tmp/rfvenv/bin/python forest_sklearn.py DATASET [rf|et] [N_TREES]   (DATASET: file stem)
Same split as datasets/README.md; non-numeric columns as ordinal codes, missing as NaN.
"""
import os, sys, time, numpy as np, pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.metrics import roc_auc_score, accuracy_score, r2_score
M=(1<<64)-1
def sm(i):
    z=(i+0x9E3779B97F4A7C15)&M
    z=((z^(z>>30))*0xBF58476D1CE4E5B9)&M
    z=((z^(z>>27))*0x94D049BB133111EB)&M
    return z^(z>>31)
SPEC={"penguins":("species","multi"),"titanic":("Survived","bin"),"wine_quality":("quality","multi"),
"california_housing":("median_house_value","reg"),"adult":("income","bin"),"bank_marketing":("y","bin"),"diamonds":("price","reg")}
name=sys.argv[1]; algo=sys.argv[2] if len(sys.argv)>2 else "rf"; ntrees=int(sys.argv[3]) if len(sys.argv)>3 else 100
tgt,task=SPEC[name]
df=pd.read_csv(os.path.join(os.environ.get("DATASETS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../datasets")), f"{name}.csv"),dtype=str,keep_default_na=False)
labels=df[tgt].tolist(); n=len(df)
test=np.zeros(n,bool)
groups={}
for r,l in enumerate(labels): groups.setdefault(l if task!="reg" else "",[]).append(r)
for rows in groups.values():
    rows.sort(key=sm)
    for r in rows[:(len(rows)+4)//5]: test[r]=True
cols=[]
for c in df.columns:
    if c==tgt: continue
    s=df[c]
    try:
        v=pd.to_numeric(s.replace("",np.nan)).astype(float); cols.append(v.values)
    except Exception:
        lv=sorted(set(x for x in s if x!=""))
        idx={x:i for i,x in enumerate(lv)}
        cols.append(np.array([idx[x] if x!="" else np.nan for x in s],float))
X=np.column_stack(cols)
if task=="reg": y=np.array([float(v) for v in labels])
else:
    cl=sorted(set(labels)); y=np.array([cl.index(v) for v in labels])
Xtr,Xte,ytr,yte=X[~test],X[test],y[~test],y[test]
Cls={"rf":(RandomForestClassifier,RandomForestRegressor),"et":(ExtraTreesClassifier,ExtraTreesRegressor)}[algo]
m=(Cls[1] if task=="reg" else Cls[0])(n_estimators=ntrees,n_jobs=1,random_state=0)
t=time.time(); m.fit(Xtr,ytr); dt=time.time()-t
if task=="reg": met=r2_score(yte,m.predict(Xte))
elif task=="bin": met=roc_auc_score(yte,m.predict_proba(Xte)[:,1])
else: met=accuracy_score(yte,m.predict(Xte))
print(f"{name} {algo} trees={ntrees} metric={met:.4f} train_s={dt:.2f} test_rows={test.sum()}")
