#!/usr/bin/python3
"""PEERS.md's workloads in plain PyTorch eager, to measure the reference on *this* machine.

../shared/PEERS.md gives Hugging Face transformers' figures on another CPU (Sapphire Rapids,
AMX). transformers is not installable here (no PyPI), but Debian's python3-torch is the same
PyTorch 1.13.1 that ellm links. This file writes out the computation that transformers 4.39
runs for those workloads, op for op as its eager modelling code does it (Qwen2ForCausalLM,
BertForSequenceClassification, greedy `generate` with a DynamicCache), so that
`scripts/bench_peers.sh` can time it next to `ellm bench` in the same minute.

It is a lower bound on what transformers costs: the library's Python around the same ops
(argument checking, output dataclasses, logits processors, stopping criteria) is left out,
so the reference runs as fast as HF or faster, and a ratio against it understates ellm.

Usage: /usr/bin/python3 scripts/peers/eager_reference.py WORKLOAD [--seconds S] [--threads N]
WORKLOAD: gemm | forward | generate | train-decoder | student (the `ellm bench` names), with
--model/--dtype/--batch as there. Prints one JSON line per figure, shaped like `ellm bench`
lines with "impl": "pytorch-eager".
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def emit(name, config, metric, value, unit, **extra):
    line = {"name": name, "impl": "pytorch-eager", "config": config, "metric": metric, "value": value, "unit": unit}
    line.update(extra)
    print(json.dumps(line), flush=True)


def time_runs(fn, warmup, min_runs, min_seconds, max_runs=1000):
    """Median seconds per call, as ellm's util/bench.cpp time_runs measures it."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < max_runs:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if len(times) >= min_runs and t1 - start >= min_seconds:
            break
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return median, n


# ----------------------------------------------------------------------------------------------
# Qwen2 as transformers 4.39 computes it in eager mode (modeling_qwen2.py).
# Shapes: B batch, T new tokens, S keys (cache + new), H hidden, nh/nkv heads, d head dim.

class RMSNorm(nn.Module):
    def __init__(self, h, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(h))
        self.eps = eps

    def forward(self, x):  # in fp32, back to the input dtype before the weight
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Rotary(nn.Module):
    def __init__(self, d, theta, max_pos=4096):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        t = torch.arange(max_pos, dtype=torch.int64).type_as(inv_freq)
        emb = torch.cat((torch.outer(t, inv_freq),) * 2, dim=-1)
        self.register_buffer("cos_cached", emb.cos(), persistent=False)
        self.register_buffer("sin_cached", emb.sin(), persistent=False)

    def forward(self, x, seq_len):
        return self.cos_cached[:seq_len].to(x.dtype), self.sin_cached[:seq_len].to(x.dtype)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, self.nh, self.nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.d = H // self.nh
        self.q_proj = nn.Linear(H, self.nh * self.d, bias=True)
        self.k_proj = nn.Linear(H, self.nkv * self.d, bias=True)
        self.v_proj = nn.Linear(H, self.nkv * self.d, bias=True)
        self.o_proj = nn.Linear(self.nh * self.d, H, bias=False)
        self.rotary = Rotary(self.d, c["rope_theta"])

    def forward(self, x, mask, position_ids, cache):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.d).transpose(1, 2)   # [B, nh, T, d]
        k = self.k_proj(x).view(B, T, self.nkv, self.d).transpose(1, 2)  # [B, nkv, T, d]
        v = self.v_proj(x).view(B, T, self.nkv, self.d).transpose(1, 2)
        past = cache[0].shape[-2] if cache is not None and cache[0] is not None else 0
        cos, sin = self.rotary(v, seq_len=past + T)
        cos, sin = cos[position_ids].unsqueeze(1), sin[position_ids].unsqueeze(1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if cache is not None:  # DynamicCache.update: concatenate along the sequence
            if cache[0] is not None:
                k, v = torch.cat([cache[0], k], dim=-2), torch.cat([cache[1], v], dim=-2)
            cache[0], cache[1] = k, v
        rep = self.nh // self.nkv  # repeat_kv
        S = k.shape[-2]
        k = k[:, :, None].expand(B, self.nkv, rep, S, self.d).reshape(B, self.nh, S, self.d)
        v = v[:, :, None].expand(B, self.nkv, rep, S, self.d).reshape(B, self.nh, S, self.d)
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.d) + mask  # [B, nh, T, S]
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(w, v).transpose(1, 2).contiguous().reshape(B, T, self.nh * self.d)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, I = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, mask, position_ids, cache):
        x = x + self.self_attn(self.input_layernorm(x), mask, position_ids, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        if c.get("tie_word_embeddings", False):
            self.lm_head.weight = self.embed_tokens.weight
        for m in self.modules():  # HF _init_weights: normal(0, initializer_range), zero biases
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.normal_(0.0, c.get("initializer_range", 0.02))
                if isinstance(m, nn.Linear) and m.bias is not None:
                    m.bias.data.zero_()

    def forward(self, ids, attention_mask, caches=None, past=0):
        """ids [B, T] → logits [B, T, V] in fp32; attention_mask [B, past + T] (1 = token)."""
        B, T = ids.shape
        x = self.embed_tokens(ids)
        # _prepare_4d_causal_attention_mask: causal and padding, additive, [B, 1, T, S]
        S = past + T
        dtype = x.dtype
        neg = torch.finfo(dtype).min
        causal = torch.full((T, T), neg, dtype=dtype).triu(1)
        causal = torch.cat([torch.zeros(T, past, dtype=dtype), causal], dim=-1)[None, None].expand(B, 1, T, S)
        pad = (1.0 - attention_mask[:, None, None, :].to(dtype)) * neg
        mask = causal.masked_fill(pad.bool(), neg)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, position_ids, caches[i] if caches is not None else None)
        return self.lm_head(self.norm(x)).float()


@torch.no_grad()
def greedy_generate(model, ids, new_tokens):
    """transformers' greedy `generate` with a cache: prefill (logits at every position), then
    one token per step; returns [B, new_tokens]."""
    attention_mask = torch.ones_like(ids)
    caches = [[None, None] for _ in model.layers]
    past, step_ids, out = 0, ids, []
    for _ in range(new_tokens):
        logits = model(step_ids, attention_mask, caches, past)
        past += step_ids.shape[1]
        next_tokens = torch.argmax(logits[:, -1, :], dim=-1)
        out.append(next_tokens)
        ids = torch.cat([ids, next_tokens[:, None]], dim=-1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1)
        step_ids = ids[:, -1:]
    return torch.stack(out, dim=1)


def load_geometry(name):
    path = name if os.path.exists(name) else os.path.join(REPO, "configs", "models", name + ".json")
    with open(path) as f:
        return json.load(f)


def make_qwen2(name, dtype):
    torch.manual_seed(0)
    return Qwen2(load_geometry(name)).to(dtype)


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


# ----------------------------------------------------------------------------------------------
# BERT as transformers 4.39 computes it (modeling_bert.py, eager attention).

class BertLayer(nn.Module):
    def __init__(self, H, nh, I):
        super().__init__()
        self.nh, self.d = nh, H // nh
        self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        self.attn_out, self.attn_norm = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        self.intermediate, self.output, self.out_norm = nn.Linear(H, I), nn.Linear(I, H), nn.LayerNorm(H, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def heads(self, x):  # transpose_for_scores: [B, L, H] → [B, nh, L, d]
        return x.view(x.shape[0], x.shape[1], self.nh, self.d).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d) + ext_mask
        probs = self.dropout(F.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        ctx = ctx.view(ctx.shape[0], ctx.shape[1], -1)
        a = self.attn_norm(self.dropout(self.attn_out(ctx)) + x)
        h = F.gelu(self.intermediate(a))
        return self.out_norm(self.dropout(self.output(h)) + a)


class Bert(nn.Module):
    def __init__(self, vocab, H, L, nh, I, max_pos=512):
        super().__init__()
        self.word, self.pos, self.token_type = nn.Embedding(vocab, H), nn.Embedding(max_pos, H), nn.Embedding(2, H)
        self.norm, self.dropout = nn.LayerNorm(H, eps=1e-12), nn.Dropout(0.1)
        self.layers = nn.ModuleList(BertLayer(H, nh, I) for _ in range(L))

    def forward(self, ids, types, mask):
        L = ids.shape[1]
        pos = torch.arange(L)[None]
        x = self.dropout(self.norm(self.word(ids) + self.token_type(types) + self.pos(pos)))
        ext = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, ext)
        return x


class BertForSequenceClassification(nn.Module):
    def __init__(self, labels=3, **geometry):
        super().__init__()
        self.bert = Bert(**geometry)
        H = geometry["H"]
        self.pooler, self.dropout, self.classifier = nn.Linear(H, H), nn.Dropout(0.1), nn.Linear(H, labels)

    def forward(self, ids, types, mask):
        h = self.bert(ids, types, mask)
        return self.classifier(self.dropout(torch.tanh(self.pooler(h[:, 0]))))


class TwoTower(nn.Module):
    """PEERS.md's two-tower: one BERT for both towers, mean pooling, cosine."""

    def __init__(self, **geometry):
        super().__init__()
        self.bert = Bert(**geometry)

    def embed(self, ids, mask):
        h = self.bert(ids, torch.zeros_like(ids), mask)
        m = mask[..., None].to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)

    def forward(self, q, qm, i, im):
        return F.cosine_similarity(self.embed(q, qm), self.embed(i, im), dim=-1)


# ----------------------------------------------------------------------------------------------
# Workloads, named and shaped as `ellm bench`'s.

def matmul_flops_forward(c, T):
    H, I, nh, nkv = c["hidden_size"], c["intermediate_size"], c["num_attention_heads"], c["num_key_value_heads"]
    d = H // nh
    per_layer = 2 * (H * nh * d + 2 * H * nkv * d + nh * d * H + 3 * H * I) + 4.0 * T * nh * d
    return T * c["num_hidden_layers"] * per_layer + 2.0 * H * c["vocab_size"] * T


def gemm_peak(dtype, seconds, n=2048):
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    t, _ = time_runs(lambda: a @ b, 2, 3, seconds)
    return 2.0 * n ** 3 / t / 1e9


def run_gemm(args):
    for dt in args.dtype:
        emit("gemm", {"n": 2048, "dtype": dt, "threads": torch.get_num_threads()}, "throughput",
             gemm_peak(DTYPES[dt], args.seconds), "GFLOP/s")


@torch.no_grad()
def run_forward(args):
    peak = gemm_peak(torch.float32, 2.0)
    for name in args.model:
        c = load_geometry(name)
        for dt in args.dtype:
            m = make_qwen2(name, DTYPES[dt]).eval()
            ids = torch.randint(c["vocab_size"], (args.batch[0], 256))
            mask = torch.ones_like(ids)
            t, runs = time_runs(lambda: m(ids, mask), 1, 3, args.seconds)
            gflops = args.batch[0] * matmul_flops_forward(c, 256) / t / 1e9
            extra = {"median_ms": t * 1e3, "runs": runs, "gflops": gflops}
            if dt == "fp32":
                extra["fraction_of_fp32_peak"] = gflops / peak
            emit("decoder_forward", {"model": name, "dtype": dt, "batch": args.batch[0], "seq": 256,
                                     "threads": torch.get_num_threads()}, "throughput", args.batch[0] * 256 / t,
                 "tokens/s", **extra)


def run_generate(args):
    for name in args.model:
        c = load_geometry(name)
        for dt in args.dtype:
            m = make_qwen2(name, DTYPES[dt]).eval()
            for b in args.batch:
                ids = torch.randint(c["vocab_size"], (b, args.prompt))
                t, runs = time_runs(lambda: greedy_generate(m, ids, args.new), 1, 2, args.seconds)
                emit("decoder_generate", {"model": name, "dtype": dt, "batch": b, "prompt": args.prompt,
                                          "new": args.new, "threads": torch.get_num_threads()},
                     "throughput", b * args.new / t, "new tokens/s", median_ms=t * 1e3, runs=runs)


def run_train_decoder(args):
    for name in args.model:
        c = load_geometry(name)
        for dt in args.dtype:
            m = make_qwen2(name, DTYPES[dt]).train()
            opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
            torch.manual_seed(1000)
            b = args.batch[0]
            ids = torch.randint(c["vocab_size"], (b, 256))
            mask = torch.ones_like(ids)

            def step():  # labels = ids: the model's shift, CrossEntropyLoss over every position
                opt.zero_grad()
                logits = m(ids, mask)
                loss = F.cross_entropy(logits[:, :-1].contiguous().view(-1, c["vocab_size"]), ids[:, 1:].reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
                opt.step()

            t, runs = time_runs(step, 1, 3, args.seconds)
            emit("decoder_train", {"model": name, "dtype": dt, "batch": b, "seq": 256, "world_size": 1,
                                   "threads": torch.get_num_threads()}, "throughput", b * 256 / t, "tokens/s",
                 median_step_ms=t * 1e3, runs=runs)


def run_student(args):
    """Training: AdamW steps, bf16 under autocast (what `Trainer(bf16=True)` does on a CPU);
    inference under no_grad, bf16 as a model converted with .to(torch.bfloat16)."""
    geometry = dict(vocab=8000, H=256, L=4, nh=4, I=1024)
    seq, qlen, ilen, train_batch = 64, 16, 48, 32
    for student in args.students:
        for dt in args.dtype:
            torch.manual_seed(0)
            model = BertForSequenceClassification(**geometry) if student == "cross-encoder" else TwoTower(**geometry)
            ids = lambda b, L: torch.randint(5, geometry["vocab"], (b, L))
            ones = lambda b, L: torch.ones(b, L, dtype=torch.long)

            def forward(b):
                if student == "cross-encoder":
                    types = torch.cat([torch.zeros(b, seq // 4, dtype=torch.long),
                                       torch.ones(b, seq - seq // 4, dtype=torch.long)], 1)
                    return model(ids(b, seq), types, ones(b, seq))
                return model(ids(b, qlen), ones(b, qlen), ids(b, ilen), ones(b, ilen))

            base = {"student": student, "dtype": dt, "threads": torch.get_num_threads()}
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            labels = torch.randint(0, 3, (train_batch,))

            def step():
                opt.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dt == "bf16"):
                    out = forward(train_batch).float()
                loss = (F.cross_entropy(out, labels) if student == "cross-encoder"
                        else F.binary_cross_entropy_with_logits(5.0 * out, (labels > 0).float()))
                loss.backward()
                opt.step()

            t, runs = time_runs(step, 2, 5, args.seconds)
            emit("student", dict(base, batch=train_batch), "train_throughput", train_batch / t, "examples/s",
                 median_ms=t * 1e3, runs=runs)
            model.eval().to(DTYPES[dt])
            with torch.no_grad():
                for b in (1, 64):
                    t, runs = time_runs(lambda: forward(b), 3, 10, args.seconds)
                    emit("student", dict(base, batch=b), "inference_throughput", b / t, "pairs/s",
                         median_ms=t * 1e3, runs=runs)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workload", choices=["gemm", "forward", "generate", "train-decoder", "student"])
    p.add_argument("--model", default="qwen2-tiny,qwen2-0.5b")
    p.add_argument("--dtype", default="fp32,bf16")
    p.add_argument("--batch", help="generate: 1,8; forward: 1; train-decoder: 4 (as ellm bench)")
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--students", default="cross-encoder,two-tower")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    args.model, args.dtype, args.students = args.model.split(","), args.dtype.split(","), args.students.split(",")
    default_batch = {"generate": "1,8", "train-decoder": "4"}.get(args.workload, "1")
    args.batch = [int(b) for b in (args.batch or default_batch).split(",")]
    for d in args.dtype:
        if d not in DTYPES:
            sys.exit(f"eager_reference.py: --dtype: unknown dtype '{d}' (fp32, bf16)")
    torch.set_num_threads(args.threads)
    {"gemm": run_gemm, "forward": run_forward, "generate": run_generate, "train-decoder": run_train_decoder,
     "student": run_student}[args.workload](args)


if __name__ == "__main__":
    main()
