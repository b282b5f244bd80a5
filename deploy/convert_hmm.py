#!/usr/bin/env python3
"""convert_hmm.py: turn a model fitted elsewhere into hmmba's HMM JSON format.

Issue 17 §5 asked for tools/convert_hmm.py; the repository's top level is
fixed, so it lives in deploy/. Python 3 standard library only (numpy only
to read .npz files). No pickle is ever loaded.

Inputs (the format is detected from the content):

* pomegranate 0.14 JSON (model.to_json()): states with DiscreteDistribution
  (categorical), NormalDistribution (1-D Gaussian), IndependentComponents-
  Distribution of NormalDistributions (diagonal) or of PoissonDistributions,
  MultivariateGaussianDistribution (full covariance) or PoissonDistribution.
  Transitions into the end state are dropped and each row renormalised over
  the emitting states (hmmba has no end state); a note says so on stderr.
  Other silent states are refused.

* hmmlearn parameters, as JSON or .npz, with the fitted attributes:
  startprob_, transmat_ and one of
    emissionprob_                   (CategoricalHMM / MultinomialHMM)
    means_ + covars_                (GaussianHMM; covariance_type diag, full,
                                     spherical or tied, in "covariance_type")
    lambdas_                        (PoissonHMM)
    weights_ + means_ + covars_     (GMMHMM, covariance_type diag)
  Export them from Python with, for example:
    json.dump({k: getattr(m, k).tolist() for k in
               ["startprob_", "transmat_", "means_", "covars_"]}
              | {"covariance_type": m.covariance_type}, open("m.json", "w"))
  Optional "states" and "symbols" lists name the states and symbols.

usage: convert_hmm.py INPUT [-o OUTPUT]    (OUTPUT defaults to stdout)
Exit status: 0, or 1 with a message naming what could not be converted.
"""

import argparse
import json
import sys


class ConvertError(Exception):
    pass


def note(msg):
    print("convert_hmm: note: " + msg, file=sys.stderr)


# ===== pomegranate 0.14 =====


def _pg_emission(dist, where):
    """(kind, parameters) of one pomegranate distribution."""
    name = dist.get("name")
    p = dist.get("parameters")
    if name == "DiscreteDistribution":
        return "categorical", p[0]
    if name == "NormalDistribution":
        return "diag", ([p[0]], [p[1] ** 2])
    if name == "PoissonDistribution":
        return "poisson", [p[0]]
    if name == "MultivariateGaussianDistribution":
        return "full", (p[0], p[1])
    if name == "IndependentComponentsDistribution":
        parts, weights = p[0], p[1]
        if any(w != 1.0 for w in weights):
            raise ConvertError(f"{where}: weighted independent components are not supported")
        kinds = [_pg_emission(d, where) for d in parts]
        if all(k == "diag" for k, _ in kinds):
            return "diag", ([v[0][0] for _, v in kinds], [v[1][0] for _, v in kinds])
        if all(k == "poisson" for k, _ in kinds):
            return "poisson", [v[0] for _, v in kinds]
        raise ConvertError(f"{where}: independent components must be all Normal or all Poisson")
    raise ConvertError(f"{where}: distribution {name!r} is not supported")


def from_pomegranate(j):
    states = j["states"]
    start_i, end_i = j["start_index"], j["end_index"]
    emitting = [i for i, s in enumerate(states) if s.get("distribution") is not None]
    silent = [i for i, s in enumerate(states) if s.get("distribution") is None]
    if sorted(silent) != sorted({start_i, end_i}):
        raise ConvertError("silent states other than the start and the end are not supported")
    pos = {i: n for n, i in enumerate(emitting)}
    K = len(emitting)
    start = [0.0] * K
    trans = [[0.0] * K for _ in range(K)]
    to_end = False
    for e in j["edges"]:
        a, b, prob = e[0], e[1], e[2]
        if b == end_i:
            to_end = to_end or prob > 0
            continue
        if a == start_i:
            start[pos[b]] += prob
        elif a in pos and b in pos:
            trans[pos[a]][pos[b]] += prob
        else:
            raise ConvertError(f"edge {a} -> {b}: between states that are not supported")
    if to_end:
        note("transitions into the end state were dropped and the rows renormalised")
    start = _normalised(start, "start")
    trans = [_normalised(r, f"transitions row {k}") for k, r in enumerate(trans)]
    names = [states[i]["name"] for i in emitting]
    ems = [_pg_emission(states[i]["distribution"], f"state {states[i]['name']!r}") for i in emitting]
    kinds = {k for k, _ in ems}
    if len(kinds) != 1:
        raise ConvertError(f"the states mix emission kinds: {sorted(kinds)}")
    kind = kinds.pop()
    if kind == "categorical":
        symbols = []
        for _, table in ems:
            symbols += [s for s in table if s not in symbols]
        emissions = {"type": "categorical", "symbols": [str(s) for s in symbols],
                     "probs": [[table.get(s, 0.0) for s in symbols] for _, table in ems]}
    elif kind == "diag":
        emissions = {"type": "gaussian", "covariance": "diag",
                     "means": [v[0] for _, v in ems], "variances": [v[1] for _, v in ems]}
    elif kind == "full":
        emissions = {"type": "gaussian", "covariance": "full",
                     "means": [v[0] for _, v in ems], "covariances": [v[1] for _, v in ems]}
    else:
        emissions = {"type": "poisson", "rates": [v for _, v in ems]}
    return {"states": names, "start": start, "transitions": trans, "emissions": emissions}


def _normalised(row, what):
    s = sum(row)
    if not s > 0:
        raise ConvertError(f"{what}: no probability left for the emitting states")
    return [x / s for x in row]


# ===== hmmlearn =====


def _diag_of(c, D):
    """A variance vector from a D-vector, a D x D matrix or a scalar."""
    if isinstance(c, (int, float)):
        return [float(c)] * D
    if c and isinstance(c[0], list):
        return [c[d][d] for d in range(D)]
    return list(c)


def from_hmmlearn(p):
    start, trans = p["startprob_"], p["transmat_"]
    K = len(start)
    out = {"start": start, "transitions": trans}
    ctype = p.get("covariance_type", "diag")
    if "emissionprob_" in p:
        probs = p["emissionprob_"]
        em = {"type": "categorical", "probs": probs}
        if "symbols" in p:
            em["symbols"] = [str(s) for s in p["symbols"]]
    elif "lambdas_" in p:
        em = {"type": "poisson", "rates": p["lambdas_"]}
    elif "weights_" in p:
        if ctype != "diag":
            raise ConvertError(f"GMMHMM: covariance_type {ctype!r} is not supported (diag only)")
        means = p["means_"]
        D = len(means[0][0])
        em = {"type": "gmm", "weights": p["weights_"], "means": means,
              "variances": [[_diag_of(c, D) for c in comps] for comps in p["covars_"]]}
    elif "means_" in p:
        means = p["means_"]
        D = len(means[0])
        covars = p["covars_"]
        if ctype in ("diag", "spherical"):
            em = {"type": "gaussian", "covariance": "diag", "means": means,
                  "variances": [_diag_of(c, D) for c in covars]}
        elif ctype == "full":
            em = {"type": "gaussian", "covariance": "full", "means": means, "covariances": covars}
        elif ctype == "tied":
            tied = covars if isinstance(covars[0][0], (int, float)) else covars[0]
            em = {"type": "gaussian", "covariance": "full", "means": means,
                  "covariances": [tied] * K}
        else:
            raise ConvertError(f"covariance_type {ctype!r} is not known")
    else:
        raise ConvertError("no emission parameters: expected emissionprob_, means_ + covars_, "
                           "lambdas_ or weights_ + means_ + covars_")
    if "states" in p:
        out["states"] = [str(s) for s in p["states"]]
    out["emissions"] = em
    return out


# ===== main =====


def load(path):
    if path.endswith(".npz"):
        import numpy  # only for .npz; allow_pickle stays off
        with numpy.load(path, allow_pickle=False) as z:
            return {k: (z[k].tolist() if z[k].shape else z[k].item()) for k in z.files}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def convert(doc):
    if isinstance(doc, dict) and doc.get("class") == "HiddenMarkovModel":
        return from_pomegranate(doc)
    if isinstance(doc, dict) and "startprob_" in doc:
        return from_hmmlearn(doc)
    raise ConvertError("not a pomegranate 0.14 HiddenMarkovModel JSON nor hmmlearn parameters "
                       "(startprob_, transmat_, ...)")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert an HMM to hmmba's JSON format.")
    ap.add_argument("input", help="pomegranate JSON, or hmmlearn parameters (.json or .npz)")
    ap.add_argument("-o", "--output", help="where to write (default: stdout)")
    a = ap.parse_args(argv)
    try:
        model = convert(load(a.input))
    except (ConvertError, KeyError, IndexError, TypeError, ValueError, OSError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        print(f"convert_hmm: {a.input}: {what}", file=sys.stderr)
        return 1
    text = json.dumps(model, indent=1) + "\n"
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
