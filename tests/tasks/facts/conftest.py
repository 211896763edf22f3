"""Fixtures of the facts tests: one torch thread for every module (``one_thread``, tests/conftest.py), the world,
and a tiny trained pre-ranker checkpoint (random 2-layer BERT with the MiniLM vocabulary, a few steps)."""

from pathlib import Path

import lightning as L
import pytest

from modalbridge.nn.bert import TINY_BERT

TINY = {"bert_config": TINY_BERT, "dim": 16}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="session")
def facts_root() -> Path:
    """The seed-0 facts world (built once, ≈ 1 s)."""
    from modalbridge.tasks.facts.world import facts_world

    return facts_world(0)


def tiny_datamodule(root, **overrides):
    """A FactsDataModule on the world with small facets (the first 64 records of each)."""
    from modalbridge.tasks.facts.data import FactsDataModule

    kwargs = {"root": str(root), "train": "train_full_no_aliases", "val": "val_full",
              "test": ("test_polysemous", "test_out_of_kg"), "max_records": 64, "batch_size": 16}
    kwargs.update(overrides)
    return FactsDataModule(**kwargs)


@pytest.fixture(scope="session")
def tiny_linker_ckpt(facts_root, tmp_path_factory) -> Path:
    """A tiny slot_linker trained 4 steps on the world, saved as a Lightning checkpoint."""
    import torch

    from modalbridge.tasks.facts.module import FactsModule

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        L.seed_everything(0, verbose=False)
        module = FactsModule("slot_linker", TINY, negatives_e=16, negatives_p=4, search_k=100)
        trainer = L.Trainer(max_steps=4, limit_val_batches=2, num_sanity_val_steps=0, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                            accelerator="cpu", devices=1)
        trainer.fit(module, tiny_datamodule(facts_root))
        path = tmp_path_factory.mktemp("facts_ckpt") / "linker.ckpt"
        trainer.save_checkpoint(path)
        return path
    finally:
        torch.set_num_threads(threads)
