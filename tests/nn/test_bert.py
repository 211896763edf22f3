"""nn.bert: BERT folders load as before; a RoBERTa-family folder (the facts paper's distilroberta-base, SimCSE-RoBERTa)
loads its own weights and byte-level BPE tokenizer through transformers' Auto classes."""

import json

import pytest
import torch

from modalbridge.nn.bert import TINY_BERT, load_bert, load_tokenizer


@pytest.fixture(scope="module")
def roberta_folder(tmp_path_factory):
    """A tiny RoBERTa saved the way Hugging Face folders are: config.json, weights, vocab.json + merges.txt."""
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-roberta")
    words = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "m", "i", "c", "h", "a", "e", "l", "Ġ", "j", "o", "r", "d", "n"]
    (folder / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt")
                         ).save_pretrained(folder)
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=40, pad_token_id=1)
    RobertaModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


def test_a_roberta_folder_loads_its_own_weights_and_tokenizer(roberta_folder):
    from transformers import RobertaModel

    model = load_bert(str(roberta_folder))
    assert model.config.model_type == "roberta" and model.pooler is None
    reference = RobertaModel.from_pretrained(roberta_folder, add_pooling_layer=False)
    for (name, ours), (_, theirs) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(ours, theirs), name  # the pretrained weights, not a random init
    tokenizer = load_tokenizer(str(roberta_folder))
    ids = tokenizer("michael jordan")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id and tokenizer.unk_token_id not in ids
    assert load_bert(str(roberta_folder), layers=1).config.num_hidden_layers == 1


def test_a_roberta_folder_builds_a_random_encoder_from_its_config(roberta_folder):
    model = load_bert(str(roberta_folder), bert_config={"num_hidden_layers": 1})
    assert model.config.model_type == "roberta" and model.config.num_hidden_layers == 1


def test_the_default_bert_is_unchanged():
    from transformers import BertModel, BertTokenizerFast

    assert type(load_bert(bert_config=TINY_BERT)) is BertModel
    assert type(load_tokenizer()) is BertTokenizerFast
