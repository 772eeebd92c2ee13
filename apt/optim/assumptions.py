"""The assumptions register of ``apt.optim`` (DESIGN.md §3): every rule we had to choose, as data.

The APT paper's equations are not available (PAPER.md). Each row is one rule of our implementation:
its id (quoted in the docstring of the code that implements it), the rule as LaTeX, why we chose it, what
the paper says *verbatim* (its abstract, or a third-party summary quoted in PAPER.md and marked as such;
"not stated" otherwise), the alternatives implemented (selectable by name), and where they are compared.
The book renders ``ASSUMPTIONS`` as a table; ``register_table()`` gives it as plain rows.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

NOT_STATED = "not stated"
_ABSTRACT_MOMENTUM = ("Abstract: \"a simple adaptive momentum mechanism designed to balance the strengths between "
                      "advanced optimizers and MTL\"")
_THIRD_PARTY_MOMENTUM = ("Third-party summary (not the paper): the adaptive momentum is driven by a cosine "
                         "similarity and has hyperparameters β_min, β_max that \"may require dataset-specific "
                         "tuning\"")
_ABSTRACT_PRESERVATION = ("Abstract: \"we introduce a light direction preservation method to facilitate Muon's "
                          "orthogonalization\"; third-party summary (not the paper): it \"may amplify noise when "
                          "the effective rank of task gradients is low\"")
_ABSTRACT_MARGINAL = ("Abstract: \"the instant-derived gradients play only a marginal role in the actual "
                      "parameter updates\"")
_ABSTRACT_MUON = ("Abstract: \"Muon-a recently emerged advanced optimizer-inherently functions as a multi-task "
                  "learner, which underscores the critical importance of the gradients used for its "
                  "orthogonalization\"")
_APT_CHAPTER = "Chapter 5 (APT, notebooks/05_apt.py)"
_ABLATION_RULE = f"{_APT_CHAPTER}: the 'clipped rule' arm against the default"
_ABLATION_MOMENTUM = f"{_APT_CHAPTER}: β-range arms and the fixed-β control"
_ABLATION_DIRECTION = f"{_APT_CHAPTER}: APT-Muon preservation arms (none, pre_mix, post_mix, dual_ns)"
_NOT_COMPARED = "not compared: one rule implemented"
_DIAGNOSTICS_CHAPTER = "Chapter 3 (claim 1, notebooks/03_instant_gradient.py) and Chapter 5 (per ablation arm)"
_CLAIM2_CHAPTER = "Chapter 4 (claim 2, notebooks/04_muon_mtl.py)"


@dataclass(frozen=True)
class Assumption:
    """One register row. equation is LaTeX (inline math, no delimiters)."""

    id: str
    name: str
    equation: str
    why: str
    paper_says: str
    alternatives: str
    compared_in: str


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption(
        "A1", "Linear cosine rule (momentum_rule='linear', default)",
        r"\beta_t = \beta_{\min} + (\beta_{\max}-\beta_{\min})\,\tfrac{1 + s\,c_t}{2}",
        "The simplest monotone map of the cosine onto [β_min, β_max]: continuous, uses the whole range, "
        "midpoint at orthogonality (the typical case for high-dimensional noisy gradients).",
        f"{_ABSTRACT_MOMENTUM}. {_THIRD_PARTY_MOMENTUM}.",
        "A2 (clipped); β_min = β_max recovers the base optimizer exactly.",
        _ABLATION_RULE),
    Assumption(
        "A2", "Clipped cosine rule (momentum_rule='clipped')",
        r"\beta_t = \beta_{\min} + (\beta_{\max}-\beta_{\min})\,\max(0,\, s\,c_t)",
        "Treats orthogonal and opposed gradients alike (β_min): only positive agreement buys momentum, "
        "so the instant gradient dominates whenever it brings a new direction.",
        f"{_THIRD_PARTY_MOMENTUM}.", "A1.", _ABLATION_RULE),
    Assumption(
        "A3", "Direction of adaptation (adapt_direction='agree_more', default)",
        r"s = +1 \text{ (agree\_more)},\quad s = -1 \text{ (agree\_less)}",
        "agree_more: when g_t agrees with m_{t−1} the momentum is already going where the MTL method points, "
        "so keep it; when they disagree, lower β so the de-conflicted instant gradient shapes the update. "
        "agree_less is the opposite reading (disagreement = noise, smooth it more).",
        NOT_STATED, "agree_less.", f"{_APT_CHAPTER}: the 'agree_less' arm"),
    Assumption(
        "A4", "What the cosine compares",
        r"c_t = \frac{\langle g_t, m_{t-1}\rangle}{\|g_t\|\,\|m_{t-1}\|},\ c_t := 0 \text{ if a norm is } 0",
        "g_t is the instant aggregated gradient in .grad (plus λθ for Adam's L2 decay, i.e. what enters m_t); "
        "m_{t−1} is the momentum before the step, so β_t is known before m_t is formed. At t = 1 m_0 = 0 has "
        "no direction: c = 0 (β_1 does not matter for Adam after bias correction, nor for Muon).",
        f"{_THIRD_PARTY_MOMENTUM}.",
        "Not implemented: comparing with the bias-corrected m̂ (same direction) or with the previous update.",
        _NOT_COMPARED),
    Assumption(
        "A5", "Bias correction with a varying β",
        r"\hat m_t = \frac{m_t}{1 - \prod_{s\le t}\beta_s}",
        "The weights (1 − β_s)Π_{r>s}β_r of the EMA sum to 1 − Π β_s, so this makes m̂_t an exact weighted "
        "average for any β sequence and equals Adam's 1 − β1^t when β is constant. Muon needs none "
        "(Newton–Schulz is scale invariant).",
        NOT_STATED, "None (any other choice biases m̂ when β varies).", "tests/optim (reduction to Adam)"),
    Assumption(
        "A6", "Scope of the cosine (cosine_scope='tensor', default)",
        r"c_t^{(i)} \text{ per parameter tensor } i \quad\text{or}\quad c_t \text{ of the concatenation}",
        "Per tensor lets layers whose gradients turn (e.g. the last shared layer) lower their momentum "
        "without touching stable ones; global is one number for the model, closer to a model-level "
        "'instant vs history' balance and less noisy for small tensors.",
        NOT_STATED, "global.", f"{_APT_CHAPTER}: the 'global cosine' arm"),
    Assumption(
        "A7", "APT-Muon adapts only Muon's matrices",
        r"\beta^{\mathrm{AdamW\ group}}_{\min} = \beta^{\mathrm{AdamW\ group}}_{\max} = \beta_1",
        "The paper pairs adaptive momentum with Muon's orthogonalization; the AdamW companion group (first "
        "layer, biases, task heads) is kept as in plain Muon so the comparison isolates APT on the matrices. "
        "Task heads receive their own task's gradient, not an aggregated one.",
        NOT_STATED,
        "Per-group beta_min/beta_max on APT's param groups (not exposed by make_optimizer).",
        "not compared: the AdamW group keeps β1 in every APT-Muon run"),
    Assumption(
        "A8", "Default β ranges",
        r"[\beta_{\min}, \beta_{\max}] = [0.5, 0.9] \text{ (Adam)},\ [0.5, 0.95] \text{ (Muon)}",
        "β_max is the base optimizer's default (Adam's β1, Muon's momentum), so APT never averages more "
        "than the base; β_min = 0.5 lets the instant gradient reach half of m_t.",
        f"{_THIRD_PARTY_MOMENTUM}.", "Any range via beta_min/beta_max.", _ABLATION_MOMENTUM),
    Assumption(
        "D0", "No direction preservation (preserve='none')",
        r"O_t = \mathrm{NS}(U_t)", "Plain Muon; the control for D1–D3.", _ABSTRACT_PRESERVATION,
        "D1, D2, D3.", _ABLATION_DIRECTION),
    Assumption(
        "D1", "Mix the instant gradient in before orthogonalization (preserve='pre_mix', APT-Muon default)",
        r"O_t = \mathrm{NS}\big((1-\gamma)\,\bar U_t + \gamma\,\bar G_t\big),\ \bar X = X/\|X\|_F",
        "The abstract speaks of facilitating the orthogonalization and of the gradients used for it: D1 "
        "changes which matrix is orthogonalized, at the cost of nothing. Unit-norm terms make γ scale-free.",
        _ABSTRACT_PRESERVATION, "D0, D2, D3.", _ABLATION_DIRECTION),
    Assumption(
        "D2", "Restore the raw instant direction after orthogonalization (preserve='post_mix')",
        r"O_t = \|O^0_t\|_F\,\overline{(1-\gamma)\bar O^0_t + \gamma \bar G_t},\ O^0_t = \mathrm{NS}(U_t)",
        "Keeps Muon's orthogonalized step and adds back the instant direction unchanged; the norm is kept so "
        "the lr scaling of Muon still holds. Its γ part keeps G's (possibly low-rank) spectrum.",
        _ABSTRACT_PRESERVATION, "D0, D1, D3.", _ABLATION_DIRECTION),
    Assumption(
        "D3", "Orthogonalize the instant gradient separately (preserve='dual_ns')",
        r"O_t = (1-\gamma)\,\mathrm{NS}(U_t) + \gamma\,\mathrm{NS}(G_t)",
        "If Muon is a multi-task learner because NS equalizes directions, the instant gradient can be "
        "given the same treatment: both terms have singular values in the NS band. Costs a second NS.",
        _ABSTRACT_PRESERVATION + ". " + _ABSTRACT_MUON, "D0, D1, D2.", _ABLATION_DIRECTION),
    Assumption(
        "D4", "Preservation strength",
        r"\gamma = 0.1 \text{ (default)},\ \gamma \in [0, 1]",
        "'Light' in the abstract: a small share of the instant direction. γ = 0 is D0.",
        _ABSTRACT_PRESERVATION, "Any γ via preserve_strength.", "not compared: γ = 0.1 in every run"),
    Assumption(
        "O1", "Which parameters Muon takes (split_muon_params)",
        r"\text{Muon} = \{W : \dim W \ge 2,\ W \notin \text{excluded}\},\ \text{AdamW} = \text{the rest}",
        "Keller Jordan's README: Muon for hidden ≥2-D weights; for a ConvNet all convolutional filters "
        "except the first; AdamW for embeddings, classifier heads, gains and biases. The model names its "
        "first layer and heads (MTLModel.muon_excluded_names()).",
        NOT_STATED, "None implemented (a list of excluded names gives any other split).",
        "benchmarks/bench_optim.py (parameter sets)"),
    Assumption(
        "O2", "Conv weights as matrices and their lr scaling",
        r"\mathrm{mat}(W) \in \mathbb{R}^{out \times in\cdot k_h k_w},\ "
        r"\eta' = \eta\sqrt{\max(1, A/B)} \text{ or } 0.2\,\eta\sqrt{\max(A,B)},\ [A,B] = \text{shape of mat}(W)",
        "The reference implementation reshapes conv gradients to [out, −1] and scales with that matrix's "
        "shape; torch.optim.Muon takes 2-D weights only (identical there).",
        NOT_STATED, "None.", "tests/optim (equality with torch.optim.Muon on 2-D weights)"),
    Assumption(
        "O3", "Muon lr scaling default of make_optimizer: match_rms_adamw",
        r"\eta' = 0.2\,\eta\,\sqrt{\max(A, B)}",
        "The benchmark protocols give one Adam lr; this scaling gives Muon's update about AdamW's RMS, so "
        "that lr serves both the Muon and the AdamW group without a new search.",
        NOT_STATED, "adjust_lr='original' (Keller Jordan; needs a Muon-specific lr ≈ 0.02).",
        "not compared: every Muon run of the book uses it, at the protocol's Adam lr"),
    Assumption(
        "O4", "sgdm: momentum 0.9 with dampening 0.9",
        r"b_t = \mu\, b_{t-1} + (1-\mu)\, g_t \ (t \ge 2),\ b_1 = g_1",
        "Makes SGD's buffer an EMA like Adam's and Muon's, so the instant-gradient share is comparable and "
        "the lr acts on the gradient's scale (no 1/(1 − μ) gain).",
        NOT_STATED, "Undamped heavy ball (torch's default) via torch.optim.SGD directly.",
        "Chapter 3 (the SGD-with-momentum runs)"),
    Assumption(
        "G1", "Instant-gradient share",
        r"\frac{\|(1-\beta_t)\, g_t\|}{\|m_t\|}\ \text{over all parameters with a gradient}",
        "The fraction of the momentum the current step's gradient makes up: 1 for SGD, ≈ 1 − β when "
        "gradients agree, smaller when the history dominates. Measures claim 1 directly.",
        _ABSTRACT_MARGINAL, "G2 (angle of the actual update).", _DIAGNOSTICS_CHAPTER),
    Assumption(
        "G2", "Update-instant alignment",
        r"\cos(\Delta\theta_t, -g_t)",
        "How much the actual step (after momentum, second moments, orthogonalization) still points along "
        "the MTL method's gradient; includes every optimizer effect, unlike G1.",
        _ABSTRACT_MARGINAL, "G1.", _DIAGNOSTICS_CHAPTER),
    Assumption(
        "G3", "Muon spectra and effective rank",
        r"\mathrm{erank}(X) = \exp\Big(-\sum_i p_i \log p_i\Big),\ p_i = \sigma_i / \sum_j \sigma_j",
        "Roy & Vetterli's entropy effective rank summarises how many directions the matrix before/after "
        "orthogonalization and the instant gradient carry (claim 2; the low-rank caveat of D1–D3).",
        _ABSTRACT_MUON, "The full singular values are kept in optimizer.muon_spectra.", _CLAIM2_CHAPTER),
    Assumption(
        "G4", "Per-task alignment and its spread",
        r"a_k = \cos(\Delta\theta_t, -g_k),\ \mathrm{spread} = \max_k a_k - \min_k a_k",
        "Whether the step still serves every task as the MTL method intended (a de-conflicting method wants "
        "all a_k > 0 and a small spread).",
        _ABSTRACT_MARGINAL, "std over tasks (alignment_summary).", _CLAIM2_CHAPTER),
)


def register_columns() -> tuple[str, ...]:
    """The column names of the register, in order."""
    return tuple(f.name for f in fields(Assumption))


def register_table() -> list[tuple[str, ...]]:
    """The register as plain rows (for pandas.DataFrame(rows, columns=register_columns()))."""
    return [astuple(row) for row in ASSUMPTIONS]


def register_myst(ids: tuple[str, ...] | None = None) -> str:
    """The register (or the entries ``ids``) as a MyST list-table: the rule and its equation on the left; why,
    what the paper says, the alternatives and where they are compared on the right. For ``{glue:md}`` with
    ``:format: myst`` in the book."""
    def flat(text: str) -> str:
        return " ".join(text.split())

    chosen = [a for a in ASSUMPTIONS if ids is None or a.id in ids]
    unknown = set(ids or ()) - {a.id for a in ASSUMPTIONS}
    if unknown:
        raise ValueError(f"ids {sorted(unknown)} are not in the register (it has {[a.id for a in ASSUMPTIONS]})")
    lines = ["```{list-table}", ":header-rows: 1", ":widths: 38 62", ":width: 100%", "",
             "* - rule (our choice, as an equation)", "  - why, what the paper says, alternatives, where compared"]
    for a in chosen:
        lines += [f"* - **{a.id}** {flat(a.name)}", "", f"    ${flat(a.equation)}$",
                  f"  - **Why.** {flat(a.why)}", "", f"    **Paper.** {flat(a.paper_says)}", "",
                  f"    **Alternatives.** {flat(a.alternatives)}", "", f"    **Compared in.** {flat(a.compared_in)}"]
    return "\n".join([*lines, "```"])
