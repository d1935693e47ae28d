"""Method C (closed form, ScaPre on UCE): the math on small random matrices, then one cheap call on the toy
pipeline (no image generation)."""
import math

import pytest
import torch

from components.erasure.closed_form import (aligned_columns, bures_prox, encode_prompts, entropy_factor,
                                            erase_closed_form, per_row_solve, rollback, row_mask,
                                            spectral_regulariser, uce_solve)

D = torch.float64


def _problem(seed=0, out_dim=7, d_in=5, n=4, k=6):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(out_dim, d_in, generator=g, dtype=D)
    C = torch.randn(d_in, n, generator=g, dtype=D)
    V = torch.randn(out_dim, n, generator=g, dtype=D)
    Cp = torch.randn(d_in, k, generator=g, dtype=D)
    return W, C, V, Cp


def test_uce_solve_meets_its_normal_equations_and_equals_least_squares():
    W_old, C, V, Cp = _problem()
    lam, se, sp = 0.5, 2.0, 0.7
    W = uce_solve(W_old, C, V, Cp, lam, se, sp)
    # normal equations: W (lam Id + se C C^T + sp Cp Cp^T) = lam W_old + se V C^T + sp W_old Cp Cp^T
    Id = torch.eye(W_old.shape[1], dtype=D)
    lhs = W @ (lam * Id + se * C @ C.T + sp * Cp @ Cp.T)
    rhs = lam * W_old + se * V @ C.T + sp * W_old @ Cp @ Cp.T
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-10)
    # the same W from a direct least-squares solve of the stacked system
    A = torch.cat([math.sqrt(lam) * Id, math.sqrt(se) * C.T, math.sqrt(sp) * Cp.T])
    B = torch.cat([math.sqrt(lam) * W_old.T, math.sqrt(se) * V.T, math.sqrt(sp) * (W_old @ Cp).T])
    torch.testing.assert_close(W, torch.linalg.lstsq(A, B).solution.T, rtol=0, atol=1e-10)
    # and it moved: the erase term is fitted better than by W_old
    assert (W @ C - V).norm() < (W_old @ C - V).norm()


def test_uce_solve_without_preserved_prompts():
    W_old, C, V, _ = _problem(1)
    W = uce_solve(W_old, C, V, None, 0.5, 1.0, 1.0)
    Id = torch.eye(W_old.shape[1], dtype=D)
    torch.testing.assert_close(W @ (0.5 * Id + C @ C.T), 0.5 * W_old + V @ C.T, rtol=0, atol=1e-10)


def test_per_row_solve_meets_its_per_row_normal_equations():
    W_old, C, V, Cp = _problem(2)
    lam, se, sp, prox = 0.5, 3.0, 0.4, 0.3
    g = torch.Generator().manual_seed(5)
    mask = torch.rand(W_old.shape[0], generator=g, dtype=D)
    R = spectral_regulariser(C.T, 0.8)
    W = per_row_solve(W_old, C, V, Cp, lam, se, sp, mask, regulariser=R, prox=prox)
    Id = torch.eye(W_old.shape[1], dtype=D)
    for r in range(W_old.shape[0]):
        M = (lam + prox) * Id + R + se * mask[r] * C @ C.T + sp * Cp @ Cp.T
        b = (lam + prox) * W_old[r] + se * mask[r] * C @ V[r] + sp * Cp @ Cp.T @ W_old[r]
        torch.testing.assert_close(M @ W[r], b, rtol=0, atol=1e-10)


def test_per_row_solve_reduces_to_uce_and_a_zero_mask_keeps_the_row():
    W_old, C, V, Cp = _problem(3)
    args = (W_old, C, V, Cp, 0.5, 2.0, 1.5)
    ones = torch.ones(W_old.shape[0], dtype=D)
    torch.testing.assert_close(per_row_solve(*args, ones), uce_solve(*args), rtol=0, atol=1e-10)
    torch.testing.assert_close(per_row_solve(*args, None), uce_solve(*args), rtol=0, atol=1e-10)
    mask = ones.clone()
    mask[2] = 0
    W = per_row_solve(*args, mask)
    torch.testing.assert_close(W[2], W_old[2], rtol=0, atol=1e-10)
    assert not torch.allclose(W[3], W_old[3])


def test_rollback():
    W_old, _, _, _ = _problem(4)
    W_new = W_old + 1.0
    e = torch.tensor([0.0, 1.0, 0.5, 0.25, 0.0, 1.0, 0.75], dtype=D)
    torch.testing.assert_close(rollback(W_old, W_new, e, 1.0), W_new)
    W = rollback(W_old, W_new, e, 0.8)
    torch.testing.assert_close(W[0], 0.8 * W_new[0] + 0.2 * W_old[0])  # e = 0: the a_min mix
    torch.testing.assert_close(W[1], W_new[1])  # e = 1: the whole edit
    torch.testing.assert_close(W[2], 0.9 * W_new[2] + 0.1 * W_old[2])


def test_row_mask_is_in_unit_interval_and_prefers_rows_that_separate_concept_from_empty():
    g = torch.Generator().manual_seed(0)
    d_in = 16
    c = torch.randn(d_in, generator=g, dtype=D)
    e = torch.randn(d_in, generator=g, dtype=D)
    diff = (c - e) / (c - e).norm()
    # rows 0..9 read the concept-vs-empty direction, rows 10..29 are blind to it (orthogonal)
    seeing = diff.expand(10, -1) + 0.01 * torch.randn(10, d_in, generator=g, dtype=D)
    blind = torch.randn(20, d_in, generator=g, dtype=D)
    blind = blind - (blind @ diff)[:, None] * diff
    W = torch.cat([seeing, blind])
    m = row_mask(W, c[None], e, num_samples=5, noise_sigma=0.01, generator=torch.Generator().manual_seed(1))
    assert m.shape == (30,)
    assert float(m.min()) >= 0 and float(m.max()) <= 1
    assert float(m.max()) == pytest.approx(1.0)
    assert float(m[:10].min()) > float(m[10:].mean())
    # two concept vectors: rows count for either (max)
    m2 = row_mask(W, torch.stack([c, c]), e, generator=torch.Generator().manual_seed(1))
    assert float(m2.min()) >= 0 and float(m2.max()) <= 1


def test_entropy_factor_counts_histogram_bins():
    d_in = 4
    W = torch.eye(d_in, dtype=D)[:2]
    # two concept vectors far apart on coordinate 0, equal on coordinate 1
    cv = torch.tensor([[0.0, 1.0, 0, 0], [10.0, 1.0, 0, 0]], dtype=D)
    e = entropy_factor(W, cv, num_samples=20, bins=20, noise_sigma=1e-4, generator=torch.Generator().manual_seed(0))
    # row 0: half the samples at 0, half at 1 after normalisation -> two bins -> H = log 2
    assert float(e[0]) == pytest.approx(1 - math.log(2) / math.log(20), abs=1e-6)
    # row 1: only the noise varies -> spread over many bins -> far less specialised
    assert 0 <= float(e[1]) < float(e[0])


def test_spectral_regulariser_and_bures_prox():
    _, C, _, _ = _problem(6)
    R = spectral_regulariser(C.T, 0.7)
    torch.testing.assert_close(R, R.T)
    assert float(torch.linalg.eigvalsh(R).min()) > -1e-12
    assert float(torch.linalg.eigvalsh(R).max()) <= 0.7 + 1e-12
    W_old, _, _, _ = _problem(7)
    W_e = W_old + 0.3 * torch.randn(W_old.shape, generator=torch.Generator().manual_seed(8), dtype=D)
    torch.testing.assert_close(bures_prox(W_old, W_e, mu=0.0, lam_prox=1.0), W_e)
    torch.testing.assert_close(bures_prox(W_old, W_old, mu=0.5, lam_prox=1.0), W_old)
    # with mu > 0 the row moves toward the old row
    W_p = bures_prox(W_old, W_e, mu=1.0, lam_prox=1.0)
    assert (W_p - W_old).norm() < (W_e - W_old).norm()


# ─── on the toy pipeline (no image generation) ──────────────────────────────────────────────────

@pytest.fixture(scope="module")
def toy_pipe(toy_world):
    return toy_world[0].pipeline


@pytest.fixture(scope="module")
def toy_config():
    from components.config.run_config import load_run_config
    from tests.conftest import REPO

    return load_run_config(REPO / "configs" / "toy.yaml").erasure


def _fresh():
    from components.models.loading import load_pipeline
    from components.toyworld.world import PIPELINE_DIR

    return load_pipeline(PIPELINE_DIR).pipeline


def _snapshot(pipe):
    from components.erasure.tensors import named_tensors

    return {n: t.detach().clone() for n, t in named_tensors(pipe).items()}


def test_columns_follow_uce_alignment(toy_pipe):
    states, mask = encode_prompts(toy_pipe, ["a red circle", "a circle"], torch.device("cpu"))
    a_states, a_mask = encode_prompts(toy_pipe, [" "], torch.device("cpu"))
    olds, news = aligned_columns(states, mask, a_states[0], a_mask[0])
    L = states.shape[1]
    # "a red circle" = BOS a red circle EOS pad...: from "circle" (index 3) to the end, padding included,
    # paired with the anchor from its own last token (for " ": index 0) on
    assert olds[0].shape == (L - 3, states.shape[2]) and news[0].shape == olds[0].shape
    torch.testing.assert_close(olds[0][0], states[0, 3])
    torch.testing.assert_close(olds[0][-1], states[0, -1])
    torch.testing.assert_close(news[0], a_states[0, :L - 3])
    assert olds[1].shape[0] == L - 2


def test_erase_changes_only_cross_attention_kv_and_leaves_pipe_alone(toy_pipe, toy_config):
    from components.erasure.request import Concept, ErasureRequest
    from components.erasure.tensors import named_tensors

    before = _snapshot(toy_pipe)
    request = ErasureRequest(concepts=[Concept("circle"), Concept("square")],
                             retain_prompts=["a red triangle", "a blue cross"], seed=3)
    result = erase_closed_form(toy_pipe, request, toy_config)
    # the pipeline passed in is untouched
    after = named_tensors(toy_pipe)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[n], after[n]) for n in before)

    kv = {n for n in before if n.startswith("unet.") and n.endswith(("attn2.to_k.weight", "attn2.to_v.weight"))}
    assert len(kv) == 14
    assert set(result.changed_tensors()) == kv  # every cross-attention K/V matrix, nothing else
    assert result.concepts == ["circle", "square"]
    prompts = result.hyperparameters["concept_prompts"]
    assert "a circle" in prompts and "a square" in prompts
    assert "" in result.hyperparameters["preserve_prompts"]

    fresh = _fresh()
    result.apply(fresh)
    applied = named_tensors(fresh)
    for n in before:
        if n in kv:
            assert not torch.equal(applied[n], before[n]), n
            torch.testing.assert_close(applied[n], result.tensors[n], rtol=0, atol=0)
        else:
            assert torch.equal(applied[n], before[n]), n
    # the edit did what it solves for: every layer maps the concept columns nearer their targets
    assert all(h["erase_residual"] < 0.9 for h in result.history)
    # and it is deterministic for a seed
    again = erase_closed_form(toy_pipe, request, toy_config)
    assert all(torch.equal(again.tensors[n], result.tensors[n]) for n in kv)


@pytest.mark.parametrize("update", [{"row_mask": False}, {"large_scale_solve": True}])
def test_variants_run_on_the_toy_pipeline(toy_pipe, toy_config, update):
    from components.erasure.request import Concept, ErasureRequest

    config = toy_config.model_copy(update={"closed_form": toy_config.closed_form.model_copy(update=update)})
    before = _snapshot(toy_pipe)
    result = erase_closed_form(toy_pipe, ErasureRequest(concepts=[Concept("circle")]), config)
    assert len(result.changed_tensors()) == 14
    assert all(torch.isfinite(t).all() for t in result.tensors.values())
    assert all(h["erase_residual"] < 1.0 for h in result.history)
    from components.erasure.tensors import named_tensors
    assert all(torch.equal(before[n], t) for n, t in named_tensors(toy_pipe).items())
