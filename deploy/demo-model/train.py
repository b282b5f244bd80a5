#!/usr/bin/env python3
"""train.py: train hmmba's demo model, a small Mamba-1 language model, from
scratch on the English corpus built by make_corpus.py.

    python3 deploy/demo-model/train.py --out OUTDIR [--fixture FILE] [options]

Steps (all seeded):
  1. split the corpus documents into training and held-out (2%);
  2. train a byte-level BPE tokenizer (Hugging Face tokenizers: NFC
     normalizer, ByteLevel pre-tokenizer and decoder, "<|endoftext|>" = id
     0) on the training documents, or load one given with --tokenizer;
  3. train a MambaForCausalLM (transformers, model_type "mamba") from its
     own initialisation, with a fast training forward written here (the
     Hugging Face one without the CUDA kernels scans token by token in
     Python); it uses the Hugging Face modules' parameters, so the names
     and the arithmetic are theirs, and it is checked against the Hugging
     Face forward before saving;
  4. round the weights to bfloat16 and save OUTDIR/{config.json,
     model.safetensors, tokenizer.json, metrics.json};
  5. evaluate the rounded model on the held-out documents and print
     samples; with --fixture, write a reference fixture computed by the
     Hugging Face model in float32 from the bfloat16 weights: logits for a
     held-out text, a greedy continuation, and tokenizer cases.

Needs PyTorch, transformers, tokenizers and safetensors (and a GPU for the
default sizes; --device cpu works for tiny smoke runs).
"""
import argparse
import copy
import gzip
import json
import math
import os
import random
import sys
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

EOT = "<|endoftext|>"


# ===== data =====


def load_docs(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    return [d for d in text.split("\n" + EOT + "\n") if d.strip()]


def split_docs(docs, seed, heldout_frac):
    """(train, heldout) lists; the held-out documents are a seeded random
    heldout_frac of all, in corpus order."""
    idx = list(range(len(docs)))
    random.Random(seed).shuffle(idx)
    n_held = max(1, int(len(docs) * heldout_frac))
    held = set(idx[:n_held])
    train = [d for i, d in enumerate(docs) if i not in held]
    heldout = [d for i, d in enumerate(docs) if i in held]
    return train, heldout


def train_tokenizer(docs, vocab_size):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    assert tok.token_to_id(EOT) == 0, "the end-of-text token must be id 0"
    return tok


def encode_docs(tok, docs, rng, split_frac):
    """Token ids of each document. A split_frac share of them is encoded in
    two pieces cut after a space ("The " + "rest"), as a prompt that ends in
    a space is encoded: the lone-space token then learns to be followed by
    a word without its leading space, so prompts like "The " read well."""
    encs = tok.encode_batch(docs)
    out = []
    for d, e in zip(docs, encs):
        ids = e.ids
        spaces = [i for i, c in enumerate(d) if c == " "]
        if spaces and rng.random() < split_frac:
            cut = spaces[0] if rng.random() < 0.5 else rng.choice(spaces)
            ids = tok.encode(d[: cut + 1]).ids + tok.encode(d[cut + 1 :]).ids
        out.append(ids)
    return out


class Stream:
    """The training documents as one token stream, each followed by id 0;
    windows start at a document start (so the model learns to begin from
    the zero state, as a prompt does) or anywhere, half and half."""

    def __init__(self, doc_ids, seed):
        order = list(range(len(doc_ids)))
        random.Random(seed).shuffle(order)
        toks, starts = [], []
        for i in order:
            starts.append(len(toks))
            toks.extend(doc_ids[i])
            toks.append(0)
        self.tokens = torch.tensor(toks, dtype=torch.long)
        self.starts = torch.tensor(starts, dtype=torch.long)

    def batch(self, gen, batch, seq_len, device):
        n = self.tokens.numel() - seq_len - 1
        half = batch // 2
        aligned = self.starts[torch.randint(len(self.starts), (half,), generator=gen)].clamp(max=n)
        anywhere = torch.randint(n, (batch - half,), generator=gen)
        pos = torch.cat([aligned, anywhere])
        idx = pos[:, None] + torch.arange(seq_len + 1)[None, :]
        w = self.tokens[idx].to(device, non_blocking=True)
        return w[:, :-1], w[:, 1:]


def heldout_windows(doc_ids, seq_len):
    """The held-out documents as one stream (each followed by id 0), cut in
    windows of seq_len + 1 overlapping by one token: every token but the
    first of the stream is predicted exactly once, each window from the
    zero state."""
    toks = []
    for ids in doc_ids:
        toks.extend(ids)
        toks.append(0)
    t = torch.tensor(toks, dtype=torch.long)
    wins = [t[i : i + seq_len + 1] for i in range(0, len(toks) - 1, seq_len)]
    return [w for w in wins if w.numel() >= 2]


# ===== model: a fast training forward over the Hugging Face modules =====


def linear_scan(a, x, chunk=16):
    """h[t] = a[t] * h[t-1] + x[t] over dim 0 (time), h[-1] = 0; float32,
    no autograd. Chunked, to launch few GPU kernels: an inclusive
    (Hillis-Steele) scan inside each chunk of `chunk` steps, all chunks at
    once; then the chunks' final states in sequence; then each chunk's
    carried-in state added, scaled by the cumulative product of a."""
    L = x.shape[0]
    pad = (-L) % chunk
    if pad:
        a = torch.cat([a, a.new_ones((pad,) + a.shape[1:])])
        x = torch.cat([x, x.new_zeros((pad,) + x.shape[1:])])
    nc = a.shape[0] // chunk
    A = a.reshape((nc, chunk) + a.shape[1:]).clone()  # becomes prod a[chunk start .. t]
    H = x.reshape((nc, chunk) + x.shape[1:]).clone()  # becomes h[t] from a zero chunk start
    k = 1
    while k < chunk:
        H[:, k:] = torch.addcmul(H[:, k:], A[:, k:], H[:, :-k])
        A[:, k:] = A[:, k:] * A[:, :-k]
        k *= 2
    carry = torch.zeros_like(H[:, 0])  # carry[j]: true state before chunk j
    for j in range(1, nc):
        carry[j] = torch.addcmul(H[j - 1, -1], A[j - 1, -1], carry[j - 1])
    H.addcmul_(A, carry[:, None])
    return H.reshape((nc * chunk,) + x.shape[1:])[:L]


class _Scan(torch.autograd.Function):
    """h = linear_scan(a, x) with its gradient: with g[t] = dh[t] +
    a[t+1] g[t+1] (a reversed scan), dx = g and da[t] = g[t] h[t-1]."""

    @staticmethod
    def forward(ctx, a, x):
        h = linear_scan(a, x)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx, dh):
        a, h = ctx.saved_tensors
        a_next = torch.cat([a[1:], a.new_ones((1,) + a.shape[1:])])  # a[t+1]; the last is unused
        g = linear_scan(a_next.flip(0), dh.flip(0)).flip(0)
        da = torch.zeros_like(a)
        da[1:] = g[1:] * h[:-1]
        return da, g


def rms_norm(x, norm):
    """MambaRMSNorm: in float32, weight applied after casting back."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * xf.to(x.dtype)


def mixer_forward(m, x):
    """MambaMixer.slow_forward's arithmetic for a whole sequence from the
    zero state; x: (B, L, d_model). The projections and the convolution
    follow autocast (bfloat16 in training); the selective scan is always
    float32, time-major (L, B, E, N)."""
    seq = x.shape[1]
    xz = F.linear(x, m.in_proj.weight, m.in_proj.bias)
    u, z = xz.chunk(2, dim=-1)  # (B, L, E) each
    u = F.conv1d(u.transpose(1, 2), m.conv1d.weight, m.conv1d.bias,
                 padding=m.conv_kernel_size - 1, groups=m.intermediate_size)[..., :seq]
    u = F.silu(u).transpose(1, 2)  # (B, L, E)
    p = F.linear(u, m.x_proj.weight)
    dt_in, Bm, Cm = torch.split(p, [m.time_step_rank, m.ssm_state_size, m.ssm_state_size], dim=-1)
    dt = F.linear(dt_in, m.dt_proj.weight, m.dt_proj.bias)
    with torch.autocast(x.device.type, enabled=False):
        dt = F.softplus(dt.float()).transpose(0, 1).contiguous()  # (L, B, E)
        uf = u.float().transpose(0, 1)  # (L, B, E)
        A = -torch.exp(m.A_log.float())  # (E, N)
        dA = torch.exp(dt[..., None] * A)  # (L, B, E, N)
        dBu = (dt * uf)[..., None] * Bm.float().transpose(0, 1)[:, :, None, :]
        h = _Scan.apply(dA, dBu)  # (L, B, E, N)
        y = (h @ Cm.float().transpose(0, 1)[..., None])[..., 0]  # (L, B, E)
        y = y + uf * m.D.float()
        y = (y * F.silu(z.float().transpose(0, 1))).transpose(0, 1)  # (B, L, E)
    return F.linear(y, m.out_proj.weight, m.out_proj.bias)


def fast_logits(model, ids, dropout=0.0):
    """Logits (B, L, V) of MambaForCausalLM `model` for ids (B, L) from the
    zero state. dropout (training only) is applied to the embeddings and to
    each mixer's output; at inference it is the identity, so the trained
    weights are an ordinary Hugging Face Mamba."""
    bb = model.backbone
    h = bb.embeddings(ids)
    h = F.dropout(h, dropout, training=dropout > 0)
    for layer in bb.layers:
        res = h.float() if layer.residual_in_fp32 else h
        out = mixer_forward(layer.mixer, rms_norm(h, layer.norm))
        h = res + F.dropout(out, dropout, training=dropout > 0)
    h = rms_norm(h, bb.norm_f)
    return F.linear(h, model.lm_head.weight)


def build_model(vocab, d_model, n_layer, seed):
    from transformers import MambaConfig, MambaForCausalLM

    cfg = MambaConfig(
        vocab_size=vocab, hidden_size=d_model, num_hidden_layers=n_layer, state_size=16,
        expand=2, conv_kernel=4, time_step_rank="auto", use_bias=False, use_conv_bias=True,
        hidden_act="silu", layer_norm_epsilon=1e-5, residual_in_fp32=True,
        tie_word_embeddings=True, initializer_range=0.02, rescale_prenorm_residual=False,
        bos_token_id=0, eos_token_id=0, pad_token_id=0, use_mambapy=False,
    )
    torch.manual_seed(seed)
    model = MambaForCausalLM(cfg)
    # GPT-2's scaled init of the residual branches, done here and not with
    # the config's rescale_prenorm_residual: transformers 5.17 applies that
    # division again to the weights it loads in from_pretrained.
    with torch.no_grad():
        for layer in model.backbone.layers:
            layer.mixer.out_proj.weight /= math.sqrt(n_layer)
    model.tie_weights()
    assert model.lm_head.weight is model.backbone.embeddings.weight
    return model


def n_params(model):
    return sum(p.numel() for p in model.parameters())  # tied weights counted once


# ===== training =====


def lr_at(step, steps, warmup, peak, floor_frac=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (floor_frac + (1 - floor_frac) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def heldout_loss(model, wins, device, bsz=64, amp=True):
    """Mean next-token cross-entropy (nats) over the held-out windows."""
    model.eval()
    total, count = 0.0, 0
    wins = sorted(wins, key=len)
    for i in range(0, len(wins), bsz):
        group = wins[i : i + bsz]
        n = len(group[0])
        same = [w for w in group if len(w) == n]
        rest = [w for w in group if len(w) != n]
        for g in [same] + [[w] for w in rest]:
            x = torch.stack(g).to(device)
            with torch.autocast(device.type, torch.bfloat16, enabled=amp and device.type == "cuda"):
                logits = fast_logits(model, x[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                   reduction="sum")
            total += loss.item()
            count += x[:, 1:].numel()
    model.train()
    return total / count


def param_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "A_log" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def train(model, stream, held_wins, a, device, log):
    opt = torch.optim.AdamW(param_groups(model, a.weight_decay), lr=a.lr, betas=(0.9, 0.95),
                            eps=1e-8, fused=device.type == "cuda")
    gen = torch.Generator().manual_seed(a.seed + 1)
    best = (float("inf"), -1, None)
    t0 = time.time()
    model.train()
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.warmup, a.lr)
        x, y = stream.batch(gen, a.batch, a.seq_len, device)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            logits = fast_logits(model, x, a.dropout)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        timed_out = a.max_minutes > 0 and time.time() - t0 > 60 * a.max_minutes
        over = timed_out or step + 1 == a.stop_step
        last = step == a.steps - 1 or over
        if (step + 1) % a.eval_every == 0 or last:
            hl = heldout_loss(model, held_wins, device)
            if hl < best[0]:
                best = (hl, step + 1, copy.deepcopy(model.state_dict()))
            log(f"step {step + 1}/{a.steps} train {loss.item():.4f} held-out {hl:.4f} "
                f"(ppl {math.exp(hl):.2f}) lr {opt.param_groups[0]['lr']:.2e} "
                f"{time.time() - t0:.0f}s")
        if over:
            why = "the --max-minutes limit was reached" if timed_out else "--stop-step"
            log(f"stopped at step {step + 1}: {why}")
            break
    model.load_state_dict(best[2])
    return {"best_step": best[1], "heldout_loss_training_precision": best[0],
            "train_seconds": time.time() - t0}


# ===== saving, evaluation, fixture =====


def round_bf16(model):
    """The weights rounded to bfloat16 (and kept so: the model's float32
    parameters are overwritten with the rounded values)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())


def save(model, tok, outdir, extra):
    from safetensors.torch import save_file

    os.makedirs(outdir, exist_ok=True)
    sd = {k: v.detach().to(torch.bfloat16).contiguous().cpu()
          for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(sd, os.path.join(outdir, "model.safetensors"), metadata={"format": "pt"})
    cfg = model.config.to_dict()
    cfg["architectures"] = ["MambaForCausalLM"]
    cfg["dtype"] = "bfloat16"
    for k in ("torch_dtype", "_name_or_path", "id2label", "label2id", "problem_type", "return_dict",
              "chunk_size_feed_forward", "is_encoder_decoder", "output_attentions",
              "output_hidden_states"):
        cfg.pop(k, None)  # generic PreTrainedConfig fields, meaningless here
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    tok.save(os.path.join(outdir, "tokenizer.json"))
    with open(os.path.join(outdir, "metrics.json"), "w") as f:
        json.dump(extra, f, indent=2)
        f.write("\n")


@torch.no_grad()
def sample(model, tok, prompt, n, temperature, seed, device):
    """Generate n tokens by full recomputation (fine at these lengths);
    stops at end-of-text. Returns the prompt plus the generated text."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    ids = tok.encode(prompt).ids
    out = []
    for _ in range(n):
        x = torch.tensor([ids + out], device=device)
        logits = fast_logits(model, x)[0, -1].float().cpu()
        if temperature <= 0:
            nxt = int(logits.argmax())
        else:
            nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g))
        if nxt == 0:
            break
        out.append(nxt)
    return prompt + tok.decode(out)


def hf_reference_model(outdir):
    """The saved model, loaded by transformers in float32 on the CPU."""
    from transformers import MambaForCausalLM

    m = MambaForCausalLM.from_pretrained(outdir, dtype=torch.float32)
    return m.eval()


def r7(v):
    return float(f"{v:.7g}")


@torch.no_grad()
def make_fixture(outdir, tok, heldout, path, n_logits, n_greedy, log):
    """reference.json from the Hugging Face model (float32 compute, the
    bfloat16 weights as saved)."""
    m = hf_reference_model(outdir)
    text = next(d for d in heldout if len(tok.encode(d).ids) >= n_logits)
    ids = tok.encode(text).ids[:n_logits]
    logits = m(torch.tensor([ids]), use_cache=False).logits[0]
    prompts = ["The best way to", "A computer is", "Life is"]
    for prompt in prompts:
        pids = tok.encode(prompt).ids
        cont = []
        for _ in range(n_greedy):  # plain argmax, full recomputation, not stopping at id 0
            nxt = int(m(torch.tensor([pids + cont]), use_cache=False).logits[0, -1].argmax())
            cont.append(nxt)
        if 0 not in cont:
            break
    cases = [{"text": d, "ids": tok.encode(d).ids} for d in heldout[:24]]
    ref = {
        "note": "hmmba demo model (config/models/demo): Hugging Face MambaForCausalLM in float32 "
                "from the bfloat16 weights as saved. logits[i] = next-token logits after "
                "input_ids[0..i] from the zero state (rounded to 7 significant digits); "
                "greedy_continuation = 32 argmax tokens after prompt_ids (not stopped at id 0); "
                "encode_cases = held-out texts and their tokenizer ids.",
        "input_ids": ids,
        "input_text": tok.decode(ids),
        "logits": [[r7(v) for v in row.tolist()] for row in logits],
        "prompt": prompt,
        "prompt_ids": tok.encode(prompt).ids,
        "greedy_continuation": cont,
        "greedy_text": tok.decode(cont),
        "encode_cases": cases,
    }
    with open(path, "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    log(f"fixture {path}: {os.path.getsize(path)} bytes; greedy {prompt!r} -> {tok.decode(cont)!r}")
    return m


@torch.no_grad()
def check_against_hf(model, hf, held_wins, device, log):
    """Max |fast - HF| logits (float32, same rounded weights) on a held-out window."""
    x = held_wins[0][:64][None]
    a = fast_logits(model.float(), x.to(device)).float().cpu()
    b = hf(x, use_cache=False).logits.float()
    d = (a - b).abs().max().item()
    log(f"fast forward vs transformers forward: max |logit diff| = {d:.2e}")
    assert d < 2e-3, "the training forward disagrees with transformers"
    return d


# ===== main =====


def parse_args():
    ap = argparse.ArgumentParser(description="train hmmba's demo Mamba model")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corpus", default=os.path.join(here, "corpus", "corpus.txt.gz"))
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--fixture", help="reference.json to write")
    ap.add_argument("--tokenizer", help="tokenizer.json to use instead of training one")
    ap.add_argument("--tokenizer-only", action="store_true", help="train and save the tokenizer, stop")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--d-model", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.3, help="training-only dropout (0.3 shipped)")
    ap.add_argument("--split-frac", type=float, default=0.1,
                    help="share of documents encoded as prompt + rest")
    ap.add_argument("--heldout-frac", type=float, default=0.02)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop training early after this long (0: no limit)")
    ap.add_argument("--stop-step", type=int, default=0,
                    help="stop after this step, the schedule still planned for --steps (0: run them all)")
    ap.add_argument("--max-docs", type=int, default=0, help="use only the first N documents (smoke runs)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap.parse_args()


def main():
    a = parse_args()
    os.makedirs(a.out, exist_ok=True)
    logf = open(os.path.join(a.out, "train.log"), "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(a.device)
    from tokenizers import Tokenizer

    docs = load_docs(a.corpus)
    if a.max_docs:
        docs = docs[: a.max_docs]
    train_docs, held_docs = split_docs(docs, a.seed, a.heldout_frac)
    log(f"{len(docs)} documents: {len(train_docs)} training, {len(held_docs)} held-out; args {vars(a)}")
    t0 = time.time()
    tok = Tokenizer.from_file(a.tokenizer) if a.tokenizer else train_tokenizer(train_docs, a.vocab)
    log(f"tokenizer: {tok.get_vocab_size()} ids ({time.time() - t0:.1f}s)")
    if a.tokenizer_only:
        tok.save(os.path.join(a.out, "tokenizer.json"))
        return
    rng = random.Random(a.seed + 2)
    train_ids = encode_docs(tok, train_docs, rng, a.split_frac)
    held_ids = [e.ids for e in tok.encode_batch(held_docs)]
    stream = Stream(train_ids, a.seed + 3)
    held_wins = heldout_windows(held_ids, a.seq_len)
    n_train = stream.tokens.numel()
    log(f"training tokens {n_train} ({sum(len(d) for d in train_docs) / n_train:.2f} chars/token), "
        f"held-out tokens {sum(len(w) - 1 for w in held_wins)}; "
        f"{a.steps * a.batch * a.seq_len / n_train:.1f} epochs planned")

    model = build_model(tok.get_vocab_size(), a.d_model, a.layers, a.seed).to(device)
    log(f"model: d_model {a.d_model}, {a.layers} layers, {n_params(model)} parameters "
        f"({2 * n_params(model) / 1e6:.2f} MB in bfloat16)")
    stats = train(model, stream, held_wins, a, device, log)

    round_bf16(model)
    hl = heldout_loss(model, held_wins, device, amp=False)
    stats.update({"heldout_loss": hl, "heldout_ppl": math.exp(hl), "params": n_params(model),
                  "d_model": a.d_model, "layers": a.layers, "train_tokens": n_train,
                  "heldout_tokens": sum(len(w) - 1 for w in held_wins), "args": vars(a)})
    log(f"bfloat16 weights, float32 compute: held-out loss {hl:.4f} nats/token, perplexity "
        f"{math.exp(hl):.2f} (best step {stats['best_step']}, {stats['train_seconds']:.0f}s)")
    model.float()
    save(model, tok, a.out, stats)

    if a.fixture:
        hf = make_fixture(a.out, tok, held_docs, a.fixture, 16, 32, log)
    else:
        hf = hf_reference_model(a.out)
    stats["fast_vs_hf_max_abs_diff"] = check_against_hf(model, hf, held_wins, device, log)
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(stats, f, indent=2)
        f.write("\n")
    for i, (p, temp) in enumerate([("The ", 0.7), ("A computer", 0.7), ("Love is", 0.7),
                                   ("Q: ", 0.7), ("The ", 0.0), ("Life is", 0.0)]):
        s = sample(model, tok, p, 60, temp, a.seed + i, device)
        log(f"--- sample (T={temp}) ---\n{s}")


if __name__ == "__main__":
    sys.exit(main())
