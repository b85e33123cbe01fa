"""The chunked LM-head loss equals the plain full-logits loss, in value and in every gradient."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from tiny import EOS, PAD, VOCAB
from tiny import id_llama as _llama
from tiny import id_pairs as _pairs
from tiny import id_t5 as _t5
from transformers import Gemma2Config, Gemma2ForCausalLM

from collapselab.config import TrainingBlock
from collapselab.training.loop import IGNORE, _collate_causal, _collate_seq2seq, train_supervised
from collapselab.training.token_loss import check_head, detached_head, head_loss


def test_head_loss_equals_cross_entropy_values_and_gradients():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, VOCAB, bias=True)
    hidden = torch.randn(11, 8, requires_grad=True)
    targets = torch.randint(0, VOCAB, (11,))
    weights = torch.rand(11)
    ref_head = copy.deepcopy(head)
    ref_hidden = hidden.detach().clone().requires_grad_()
    ref = (F.cross_entropy(ref_head(ref_hidden), targets, reduction="none") * weights).sum()
    (3.0 * ref).backward()  # an upstream factor, as the loop's 1/tokens normalisation
    ours = head_loss(hidden, targets, head, weights, chunk_rows=4)  # chunks of 4, 4, 3 rows
    (3.0 * ours).backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(hidden.grad, ref_hidden.grad)
    torch.testing.assert_close(head.weight.grad, ref_head.weight.grad)
    torch.testing.assert_close(head.bias.grad, ref_head.bias.grad)


def _lora_llama():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        _llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0)
    )
    # lora_B starts at zero, which would leave lora_A's gradient zero: give it a value.
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model


def _batch(arch, model):
    pairs = _pairs(6)
    if arch == "t5":
        return _collate_seq2seq(model, pairs, PAD)
    return _collate_causal(pairs, PAD)


@pytest.mark.parametrize("arch", ["llama", "lora", "t5"])
def test_chunked_training_loss_has_the_full_logits_gradients(arch):
    # One micro-batch as the loop runs it (head detached, target rows gathered, 5-row chunks)
    # against the model's own full logits with F.cross_entropy: same loss, same gradient on
    # every trainable parameter (the tied embedding / LM head included).
    make = {"llama": _llama, "lora": _lora_llama, "t5": _t5}[arch]
    ours_model, ref_model = make(), None
    ref_model = copy.deepcopy(ours_model)
    batch = _batch(arch, ours_model)
    n = int((batch.labels != IGNORE).sum())

    logits = ref_model(**batch.inputs).logits  # (B, T, V)
    ref = F.cross_entropy(
        logits.flatten(0, 1), batch.labels.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    (ref / n).backward()

    mask = batch.labels != IGNORE
    with detached_head(ours_model) as head:
        hidden = ours_model(**batch.inputs).logits
        assert hidden.shape[-1] != VOCAB  # hidden states, not logits
        ours = head_loss(hidden[mask], batch.labels[mask], head, chunk_rows=5)
    (ours / n).backward()

    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    named_ref = dict(ref_model.named_parameters())
    trainable = [(k, p) for k, p in ours_model.named_parameters() if p.requires_grad]
    assert trainable
    for name, p in trainable:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, named_ref[name].grad, rtol=1e-4, atol=1e-6)


def test_training_runs_the_head_only_on_target_rows_a_chunk_at_a_time(monkeypatch):
    # The memory claim: the LM head never sees a prompt or padding row, and never more than
    # one chunk of rows at once.
    import collapselab.training.token_loss as lm_loss

    monkeypatch.setattr(lm_loss, "CHUNK_LOGITS", 4 * VOCAB)  # 4 rows per chunk
    model = _llama()
    seen: list[int] = []
    model.lm_head.register_forward_hook(
        lambda m, args, out: seen.append(args[0].shape[:-1].numel())
    )
    pairs = _pairs(8)
    cfg = TrainingBlock(max_steps=1, batch_tokens=10_000, warmup_ratio=0.0)
    res = train_supervised(model, pairs, cfg, pad_id=PAD, seed=0, progress=False)
    check_rows = seen[:2]  # check_head: one row of at most 16 tokens, twice
    assert max(check_rows) <= 16
    chunks = seen[2:]
    targets = sum(len(t) for _, t in pairs)
    assert res.target_tokens == targets
    assert max(chunks) <= 4 and sum(chunks) == targets  # the 0-row call sizes the vocabulary


def test_models_that_change_logits_after_the_head_are_refused():
    torch.manual_seed(0)
    cfg = Gemma2Config(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        final_logit_softcapping=2.0,  # applied to the logits after lm_head
        pad_token_id=PAD,
        eos_token_id=EOS,
    )
    model = Gemma2ForCausalLM._from_config(cfg, attn_implementation="eager")
    batch = _collate_causal(_pairs(2), PAD)
    with pytest.raises(ValueError, match="soft-capping"):
        check_head(model, model.get_output_embeddings(), batch.inputs)
    assert model.get_output_embeddings() is model.lm_head  # the head is back after the check
