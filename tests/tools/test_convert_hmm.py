#!/usr/bin/python3
"""test_convert_hmm.py: deploy/convert_hmm.py end to end (issue 17 §5).

Models are built in pomegranate 0.14 (Debian's python3-pomegranate), saved
with to_json(), converted, installed in a running hmmba (PUT /models), and
decoded there: the log-likelihood must match pomegranate's
log_probability within 1e-9 relative and the Viterbi path its viterbi().
hmmlearn-style parameters are checked against a plain forward algorithm
written here. Exit 77 (skipped) when pomegranate is not installed.

usage: test_convert_hmm.py HMMBA CONVERT_HMM_PY
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

try:
    import numpy
    from pomegranate import (DiscreteDistribution, HiddenMarkovModel,
                             IndependentComponentsDistribution, MultivariateGaussianDistribution,
                             NormalDistribution, PoissonDistribution, State)
except ImportError as e:
    print(f"skipped: {e} (install python3-pomegranate)")
    sys.exit(77)

HMMBA, CONVERT = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def start_server():
    p = subprocess.Popen([HMMBA, "--listen", "127.0.0.1:0", "--workers", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()  # "listening on http://127.0.0.1:PORT"
    if "listening on" not in line:
        p.kill()
        sys.exit(f"hmmba did not start: {line!r}")
    return p, line.strip().split()[-1]


def http(base, method, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def convert(doc, name):
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, name), os.path.join(d, "out.json")
        with open(src, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        r = subprocess.run([sys.executable, CONVERT, src, "-o", dst], capture_output=True,
                           text=True)
        if r.returncode != 0:
            return None, r.stderr
        with open(dst) as f:
            return json.load(f), r.stderr


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(b))


def check_pomegranate(base, name, model, seqs, as_json):
    out, err = convert(model.to_json(), name + ".json")
    check(out is not None, f"{name}: converted ({err.strip()})")
    if out is None:
        return
    st, a = http(base, "PUT", "/models/" + name, out)
    check(st in (200, 201), f"{name}: PUT {st} {a}")
    for seq in seqs:
        obs = [as_json(x) for x in seq]
        st, a = http(base, "POST", "/decode", {"model": name, "observations": obs})
        want = model.log_probability(seq)
        check(st == 200 and close(a["log_likelihood"], want),
              f"{name}: log-likelihood {a.get('log_likelihood')} vs pomegranate {want}")
        _, vpath = model.viterbi(seq)
        names = [s.name for _, s in vpath if s.distribution is not None]
        check(st == 200 and a["path_names"] == names,
              f"{name}: Viterbi path {a.get('path_names')} vs pomegranate {names}")


def forward(start, trans, emit, T):
    """A plain forward algorithm: emit(t, k) is the emission probability."""
    K = len(start)
    alpha = [start[k] * emit(0, k) for k in range(K)]
    ll = 0.0
    for t in range(1, T + 1):
        c = sum(alpha)
        ll += math.log(c)
        alpha = [a / c for a in alpha]
        if t == T:
            break
        alpha = [sum(alpha[i] * trans[i][j] for i in range(K)) * emit(t, j) for j in range(K)]
    return ll


def normal(x, mu, var):
    return math.exp(-0.5 * (x - mu) ** 2 / var) / math.sqrt(2 * math.pi * var)


def main():
    srv, base = start_server()
    try:
        # categorical: the dishonest casino
        fair = DiscreteDistribution({str(i): 1 / 6 for i in range(1, 7)})
        loaded = DiscreteDistribution({**{str(i): 0.1 for i in range(1, 6)}, "6": 0.5})
        m = HiddenMarkovModel("casino")
        s1, s2 = State(fair, name="fair"), State(loaded, name="loaded")
        m.add_states(s1, s2)
        m.add_transition(m.start, s1, 0.5)
        m.add_transition(m.start, s2, 0.5)
        m.add_transition(s1, s1, 0.95)
        m.add_transition(s1, s2, 0.05)
        m.add_transition(s2, s1, 0.1)
        m.add_transition(s2, s2, 0.9)
        m.bake()
        check_pomegranate(base, "casino", m, [list("666123"), list("6666661234512363")], str)

        # Gaussian, diagonal (independent normals) and full
        g = HiddenMarkovModel("g")
        a = State(IndependentComponentsDistribution(
            [NormalDistribution(0.0, 1.0), NormalDistribution(1.0, 0.5)]), name="a")
        b = State(IndependentComponentsDistribution(
            [NormalDistribution(3.0, 2.0), NormalDistribution(-1.0, 1.5)]), name="b")
        g.add_states(a, b)
        g.add_transition(g.start, a, 0.7)
        g.add_transition(g.start, b, 0.3)
        for x, y, p in [(a, a, 0.8), (a, b, 0.2), (b, a, 0.4), (b, b, 0.6)]:
            g.add_transition(x, y, p)
        g.bake()
        seq = numpy.array([[0.1, 1.2], [2.5, -0.5], [3.3, -1.9], [0.2, 0.8]])
        check_pomegranate(base, "gdiag", g, [seq], lambda v: [float(t) for t in v])

        f = HiddenMarkovModel("f")
        c = State(MultivariateGaussianDistribution([0.0, 1.0], [[1.0, 0.3], [0.3, 2.0]]), name="c")
        d = State(MultivariateGaussianDistribution([2.0, -1.0], [[0.5, -0.1], [-0.1, 0.4]]),
                  name="d")
        f.add_states(c, d)
        f.add_transition(f.start, c, 0.5)
        f.add_transition(f.start, d, 0.5)
        for x, y, p in [(c, c, 0.9), (c, d, 0.1), (d, c, 0.3), (d, d, 0.7)]:
            f.add_transition(x, y, p)
        f.bake()
        check_pomegranate(base, "gfull", f, [seq], lambda v: [float(t) for t in v])

        # Poisson
        p = HiddenMarkovModel("p")
        q, r = State(PoissonDistribution(1.5), name="quiet"), State(PoissonDistribution(7.0),
                                                                     name="busy")
        p.add_states(q, r)
        p.add_transition(p.start, q, 0.6)
        p.add_transition(p.start, r, 0.4)
        for x, y, w in [(q, q, 0.85), (q, r, 0.15), (r, q, 0.25), (r, r, 0.75)]:
            p.add_transition(x, y, w)
        p.bake()
        check_pomegranate(base, "pois", p, [[0, 2, 9, 6, 8, 1, 0]], int)

        # an end state: dropped with a note, rows renormalised
        e = HiddenMarkovModel("e")
        s = State(DiscreteDistribution({"x": 0.5, "y": 0.5}), name="s")
        e.add_states(s)
        e.add_transition(e.start, s, 1.0)
        e.add_transition(s, s, 0.75)
        e.add_transition(s, e.end, 0.25)
        e.bake()
        out, err = convert(e.to_json(), "end.json")
        check(out is not None and out["transitions"] == [[1.0]] and "end state" in err,
              f"end state dropped with a note: {out} {err.strip()}")

        # hmmlearn parameters: a GMMHMM (covars_ as hmmlearn's property gives them,
        # D x D) and a GaussianHMM with covariance_type spherical
        gmm = {"startprob_": [0.6, 0.4], "transmat_": [[0.7, 0.3], [0.2, 0.8]],
               "weights_": [[0.3, 0.7], [1.0, 0.0]],
               "means_": [[[-2.0], [1.0]], [[4.0], [0.0]]],
               "covars_": [[[[1.0]], [[0.5]]], [[[2.0]], [[1.0]]]], "covariance_type": "diag",
               "states": ["low", "high"]}
        xs = [-1.5, 0.7, 4.2, 3.1, -2.2]

        def gmm_emit(t, k):
            return sum(w * normal(xs[t], mu[0], cv[0][0])
                       for w, mu, cv in zip(gmm["weights_"][k], gmm["means_"][k], gmm["covars_"][k]))

        sph = {"startprob_": [0.5, 0.5], "transmat_": [[0.9, 0.1], [0.1, 0.9]],
               "means_": [[0.0, 0.0], [2.0, 2.0]], "covars_": [0.5, 1.5],
               "covariance_type": "spherical"}
        ys = [[0.1, -0.2], [1.9, 2.4], [2.2, 1.7]]

        def sph_emit(t, k):
            return math.prod(normal(ys[t][d], sph["means_"][k][d], sph["covars_"][k])
                             for d in range(2))

        for name, params, obs, emit in [("hl-gmm", gmm, xs, gmm_emit),
                                        ("hl-sph", sph, ys, sph_emit)]:
            out, err = convert(params, name + ".json")
            check(out is not None, f"{name}: converted ({err.strip()})")
            st, a = http(base, "PUT", "/models/" + name, out)
            check(st in (200, 201), f"{name}: PUT {st}")
            st, a = http(base, "POST", "/decode",
                         {"model": name, "observations": obs, "algorithm": "forward"})
            want = forward(params["startprob_"], params["transmat_"], emit, len(obs))
            check(st == 200 and close(a["log_likelihood"], want),
                  f"{name}: log-likelihood {a.get('log_likelihood')} vs plain forward {want}")

        # refusals name what is wrong
        out, err = convert({"startprob_": [1.0], "transmat_": [[1.0]]}, "bad.json")
        check(out is None and "no emission parameters" in err, f"refused: {err.strip()}")
        out, err = convert({"class": "Model"}, "bad2.json")
        check(out is None and "not a pomegranate" in err, f"refused: {err.strip()}")
    finally:
        srv.terminate()
        srv.wait(timeout=60)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
