"""Where a Hugging Face encoder with its first layers frozen is cut for the feature cache: the hidden states
entering the first trainable layer. The tail on those states (each sample computed alone, padded together)
gives the model's own logits on a padded batch, reads the batch's attention mask, trains the model's own
layers with their dropout active, and leaves the model as it found it; a structure it does not know is refused
with a reason."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from finetune_gui.core.features.layer_cut import layer_cut, stored_bytes, tail_matches_model
from finetune_gui.core.models.hf import hf_blocks

transformers = pytest.importorskip("transformers")


def _encoder(kind: str, dropout: float = 0.0):
    """A 3-layer encoder classifier with large initial weights (sharp attention: the mask shows in the logits)."""
    torch.manual_seed(0)
    if kind == "bert":
        cfg = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                      intermediate_size=32, num_labels=3, initializer_range=0.5,
                                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)  # fmt: skip
        return transformers.BertForSequenceClassification(cfg)
    if kind == "distilbert":
        cfg = transformers.DistilBertConfig(vocab_size=64, dim=16, n_layers=3, n_heads=2, hidden_dim=32, num_labels=3,
                                            initializer_range=0.5, dropout=dropout, attention_dropout=dropout)  # fmt: skip
        return transformers.DistilBertForSequenceClassification(cfg)
    cfg = transformers.RobertaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                     intermediate_size=32, num_labels=3, max_position_embeddings=40, pad_token_id=1,
                                     initializer_range=0.5, hidden_dropout_prob=dropout,
                                     attention_probs_dropout_prob=dropout)  # fmt: skip
    return transformers.RobertaForSequenceClassification(cfg)


def _freeze_below(model, k: int) -> list[str]:
    """Freeze the embeddings and the first k layers (as last-n freezing does); the bundle's blocks."""
    blocks = hf_blocks(model)
    model.requires_grad_(False)
    for block in blocks[1 + k :]:
        model.get_submodule(block).requires_grad_(True)
    for name, module in model.named_children():
        if name != model.base_model_prefix:
            module.requires_grad_(True)
    return blocks


def _padded_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 60, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 4:], mask[1, 4:] = 0, 0  # three lengths: 9, 4 and 6
    ids[2, 6:], mask[2, 6:] = 0, 0
    return {"input_ids": ids, "attention_mask": mask}


def _alone_then_padded(cut, batch) -> torch.Tensor:
    """What the cache holds for the batch's rows: each row's states computed alone, zero-padded to the batch."""
    rows = []
    for row in range(batch["input_ids"].shape[0]):
        n = int(batch["attention_mask"][row].sum())
        alone = cut.prefix(batch["input_ids"][row : row + 1, :n], batch["attention_mask"][row : row + 1, :n])
        rows.append(torch.nn.functional.pad(alone, (0, 0, 0, batch["input_ids"].shape[1] - n)))
    return torch.cat(rows)


@pytest.mark.parametrize("kind", ["bert", "distilbert", "roberta"])
def test_the_tail_on_cached_states_gives_the_models_logits_on_a_padded_batch(kind):
    model = _encoder(kind).eval()
    cut = layer_cut(model, _freeze_below(model, 2))
    assert not isinstance(cut, str), cut
    assert cut.k == 2 and cut.where == "the hidden states after encoder layer 2 of 3"
    base = model.base_model_prefix
    layers = hf_blocks(model)[1].rpartition(".")[0]
    assert cut.frozen_modules == [f"{base}.embeddings", f"{layers}.0", f"{layers}.1"]
    batch = _padded_batch()
    with torch.no_grad():
        states = _alone_then_padded(cut, batch)
        assert states.shape == (3, 9, 16) and not states[1, 4:].any()  # padding positions are stored as zeros
        reference = model(**batch).logits
        assert torch.allclose(cut.tail(**batch, feature_hidden=states).logits, reference, atol=1e-5)
        unmasked = cut.tail(batch["input_ids"], torch.ones_like(batch["attention_mask"]), states).logits
    assert (unmasked - reference).abs().max() > 1e-3  # the tail reads the batch's mask: the padding matters
    assert tail_matches_model(cut, model, batch)


def test_with_only_the_embeddings_frozen_the_cut_is_their_output():
    model = _encoder("bert").eval()
    cut = layer_cut(model, _freeze_below(model, 0))
    assert not isinstance(cut, str), cut
    assert cut.k == 0 and cut.frozen_modules == ["bert.embeddings"]
    assert cut.where == "the hidden states after the embeddings, below encoder layer 1 of 3"
    assert tail_matches_model(cut, model, _padded_batch())


def test_the_tail_trains_the_models_own_layers_above_the_cut_with_dropout_active():
    model = _encoder("bert", dropout=0.3)
    cut = layer_cut(model, _freeze_below(model, 2))
    batch = _padded_batch()
    with torch.no_grad():
        model.eval()
        states = cut.prefix(**batch)
    model.train()
    first = cut.tail(**batch, feature_hidden=states).logits
    second = cut.tail(**batch, feature_hidden=states).logits
    assert not torch.equal(first, second)  # dropout above the cut draws anew in training
    first.sum().backward()
    assert model.bert.encoder.layer[2].attention.self.query.weight.grad is not None
    assert model.classifier.weight.grad is not None
    assert all(q.grad is None for q in model.bert.encoder.layer[1].parameters())


def test_the_prefix_and_tail_leave_the_model_as_they_found_it():
    model = _encoder("bert").eval()
    layers, embeddings = model.bert.encoder.layer, model.bert.embeddings
    cut = layer_cut(model, _freeze_below(model, 1))
    batch = _padded_batch()
    cut.tail(**batch, feature_hidden=cut.prefix(**batch))
    assert model.bert.encoder.layer is layers and len(layers) == 3 and model.bert.embeddings is embeddings
    assert not model.bert._forward_hooks


def test_trainable_embeddings_below_the_first_trainable_layer_mean_no_cut():
    model = _encoder("bert")
    blocks = _freeze_below(model, 2)
    model.bert.embeddings.word_embeddings.requires_grad_(True)
    assert layer_cut(model, blocks) == "bert.embeddings.word_embeddings.weight trains below the first layer"


def test_a_model_whose_structure_the_layer_cut_does_not_know_is_refused_with_a_reason():
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, num_labels=3, pad_token_id=0)
    model = transformers.GPT2ForSequenceClassification(cfg)
    assert layer_cut(model, hf_blocks(model)) == (
        "the layer cut covers BERT, DistilBERT and RoBERTa encoders so far (this model is gpt2)"
    )


def test_the_stored_size_counts_every_sample_at_its_splits_longest_length():
    train = SimpleNamespace(input_ids=[[1, 2, 3], [1, 2, 3, 4, 5]])  # 2 samples x 5 tokens
    val = SimpleNamespace(input_ids=[[1, 2]])  # 1 x 2
    assert stored_bytes([train, val, SimpleNamespace(input_ids=[])], hidden=384) == (2 * 5 + 1 * 2) * 384 * 4
