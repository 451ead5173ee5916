"""The declarations an adapter is made of: plain frozen data, no runtime behaviour.

Each spec says where something lives in a family's HuggingFace code, so the core
can serve it (`attention`, `heads`, `moe`), or what shape the family's layers have
(`ConfigKeys`, `Span`, `Residual`). Every spec has ``problems()``: what is
malformed in it, checked when the adapter is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Union

from . import points
from .config_sources import language_configs
from .moe_declarations import ExpertByHand, Routing, TopKInRouter
from .points import Called, Point

if TYPE_CHECKING:
    from transformers import PretrainedConfig

#: ``(config) -> reason`` when a loaded model's config takes a path the declaration
#: does not serve (an option that bypasses the hooked code); None when served.
Refusal = Callable[["PretrainedConfig"], Optional[str]]


def _refusal_problems(refuse: object) -> list[str]:
    return [] if refuse is None or callable(refuse) else ["`refuse` must be callable (config) -> reason or None"]


@dataclass(frozen=True)
class ConfigKeys:
    """Names of the HuggingFace config attributes that hold the model's sizes.

    `num_kv_heads` and `head_dim` may be None when the family has no such key;
    the core then falls back to `num_heads` and `hidden_size // num_heads`. A key
    may be dotted (``"attn_config.kv_n_heads"``, a nested config) or, where no key
    says it, a function ``(config) -> int`` (multi-query layouts that ignore a key).

    Three optional fields say what a single size per model cannot:

    - ``per_layer``: the config attribute holding one config per layer (transformers'
      heterogeneous ``per_layer_config``). Layer i's ``num_heads``, ``num_kv_heads`` and
      ``head_dim`` are then read with the same keys from its own config (`layer_sizes`).
    - ``projections``: the widths of the attention's projections, for layouts the
      default guess (a query projection ``num_heads * head_dim`` wide and key/value ones
      ``num_kv_heads * head_dim``, or one fused ``(num_heads + 2 * num_kv_heads) * head_dim``)
      does not describe: ``{path from the attention module: parts}``, the width being
      the sum of the parts and each part a tuple of factors multiplied, a factor being
      a served size (``"num_heads"``, ``"num_kv_heads"``, ``"head_dim"``), a config key
      or an int. A query fused with a per-head output gate:
      ``{"q_gate_proj": (("num_heads", "head_dim"), ("num_heads", "v_head_dim"))}``. A
      stack of expert weights (experts, out, in) is measured per expert, by ``out``.
    - ``kv_shared``: ``(config) -> {layer: source layer}`` for layers that project no
      keys and values of their own and attend over those an earlier layer projected
      (cross-layer kv sharing); None when every attention layer projects its own.
    """

    num_layers: str = "num_hidden_layers"
    num_heads: str = "num_attention_heads"
    num_kv_heads: Optional[str] = "num_key_value_heads"
    head_dim: Optional[str] = "head_dim"
    hidden_size: str = "hidden_size"
    vocab_size: str = "vocab_size"
    per_layer: Optional[str] = None
    projections: Optional[Mapping[str, tuple[tuple[Union[str, int], ...], ...]]] = None
    kv_shared: Optional[Callable[["PretrainedConfig"], Mapping[int, int]]] = None

    def problems(self) -> list[str]:
        found = []
        for name in ("num_layers", "num_heads", "num_kv_heads", "head_dim", "hidden_size", "vocab_size"):
            value = getattr(self, name)
            optional = name in ("num_kv_heads", "head_dim")
            if not (isinstance(value, str) and value) and not callable(value) and not (optional and value is None):
                found.append(f"config key `{name}` must be a config attribute name, got {value!r}")
        if self.per_layer is not None and not (isinstance(self.per_layer, str) and self.per_layer):
            found.append(f"`per_layer` must name the config attribute holding one config per layer, got {self.per_layer!r}")
        if self.kv_shared is not None and not callable(self.kv_shared):
            found.append(f"`kv_shared` must be (config) -> {{layer: source layer}}, got {self.kv_shared!r}")
        if self.projections is not None:
            if not isinstance(self.projections, Mapping) or not self.projections:
                found.append(f"`projections` must be a non-empty {{path: parts}} mapping, got {self.projections!r}")
            else:
                for path, parts in self.projections.items():
                    well_formed = isinstance(path, str) and path and isinstance(parts, tuple) and parts and all(
                        isinstance(part, tuple) and part and all(isinstance(f, (str, int)) for f in part)
                        for part in parts
                    )
                    if not well_formed:
                        found.append(
                            f"`projections[{path!r}]` must be a tuple of parts, each a tuple of factors (a size "
                            f"name, a config key or an int), got {parts!r}"
                        )
        return found

    def layer_config(self, config: "PretrainedConfig", layer: int) -> "PretrainedConfig":
        """Layer ``layer``'s own config where `per_layer` is declared, else ``config`` (the text config of a multimodal one)."""
        if self.per_layer is None:
            return config
        for candidate in language_configs(config):
            per_layer = getattr(candidate, self.per_layer, None)
            if per_layer is not None:
                return per_layer[layer]
        return config

    def layer_sizes(self, config: "PretrainedConfig", layer: int) -> dict[str, int]:
        """``num_heads``, ``num_kv_heads`` and ``head_dim`` of one layer, read from its own config."""
        own = self.layer_config(config, layer)

        def read(key: Any) -> Any:
            if key is None:
                return None
            if callable(key):
                return key(own)
            value = own
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
                if value is None:
                    return None
            return value

        heads = int(read(self.num_heads))
        hidden = read(self.hidden_size)
        kv_heads = read(self.num_kv_heads)
        head_dim = read(self.head_dim)
        return {
            "num_heads": heads,
            "num_kv_heads": int(kv_heads) if kv_heads else heads,
            "head_dim": int(head_dim) if head_dim else int(hidden) // heads,
        }


@dataclass(frozen=True)
class AttentionSpec:
    """Where the family's attention forward holds its post-softmax probabilities.

    Fields:
        probabilities: the point whose value is the probabilities the attention
            actually multiplies the values by, e.g. ``Inside(Called("attention_interface"),
            Called("nn.functional.dropout"))``: inside the eager attention function,
            the dropout (the identity in eval mode). See `nnrosetta.conventions`.
        refuse: optional ``(config) -> reason`` for configs that bypass that code.
        module: path from the layer to the module whose forward holds the point, where
            that is not the layer's ``self_attn`` (a `Span` attention: BERT's
            ``attention.self``); None means ``self_attn``.
        flat_heads: the value is stored as (batch * heads, q, k); it is served as
            (batch, heads, q, k) and written back flat.
        sinks: attention sinks: the path from the attention module (``module``, else
            ``self_attn``) to its (num_heads,) parameter of per-head sink logits, each of
            which joins every softmax row as one more column that attends to nothing and
            is dropped after the softmax. The probabilities are then the key columns only
            (what HuggingFace eager returns) and a row sums to 1 minus the sink's share,
            ``exp(s) / (exp(s) + sum_j exp(score_j))``. A layer whose attribute is None has
            no sink, and its rows sum to 1. None: no sinks anywhere.
    """

    probabilities: Point
    refuse: Optional[Refusal] = None
    module: Optional[str] = None
    flat_heads: bool = False
    sinks: Optional[str] = None

    def problems(self) -> list[str]:
        found = points.problems(self.probabilities, "probabilities") + _refusal_problems(self.refuse)
        if self.module is not None and (not isinstance(self.module, str) or not self.module):
            found.append(f"`module` must be a module path from the layer, got {self.module!r}")
        if self.sinks is not None and (not isinstance(self.sinks, str) or not self.sinks):
            found.append(f"`sinks` must be a parameter path from the attention module, got {self.sinks!r}")
        return found


#: How a fused projection lays out queries, keys and values along its last dimension.
FUSED_LAYOUTS = ("blocks", "per_head", "grouped")


@dataclass(frozen=True)
class HeadsSpec:
    """Where each head's queries, keys, values and output live in the family's attention.

    Declare the per-head projections one of two ways: ``queries``/``keys``/``values``
    as points whose value is (batch, heads, seq, head_dim) before rotary, or
    ``fused_projection``: a child module of the attention whose output holds all
    three, laid out as ``fused_layout`` says — ``"blocks"`` ([all queries | all keys |
    all values], GPT-2's ``c_attn``), ``"per_head"`` (for each head its query, key
    and value, GPT-NeoX's ``query_key_value``) or ``"grouped"`` (for each key/value
    head its group's queries, then its key, then its value: Falcon's layouts); the
    core splits it.

    When the values' point comes before the keys' in the forward (values assigned
    before a q/k norm), they are read where the attention call receives them, so
    queries, keys and values are always read in that order.

    Fields:
        output_projection: the attention's child mapping the concatenated head
            outputs to the hidden size (``"o_proj"``); its input, viewed as
            (batch, seq, heads, head_dim), is `heads_output`.
        attention_call: the call of the attention function (transformers'
            ``AttentionInterface`` signature: module, query, key, value, mask,
            scaling=..., softcap=...; other positions in ``call_arguments``); its
            query and key are the rotated ones. None where the family computes
            attention by hand in its forward: per-head values and head outputs are
            served, `rotated_queries`/`rotated_keys`/`attention_patterns` are not.
        queries, keys, values: points (see `nnrosetta.points`).
        fused_projection, fused_layout: the fused alternative.
        refuse: optional ``(config) -> reason`` for configs that bypass that code.
        module: path from the layer to the module whose forward holds the points (and
            the fused projection), where that is not ``self_attn`` (a `Span` attention);
            then ``output_projection`` is a path from the layer. None means ``self_attn``.
        seq_first: names of points whose value is (batch, seq, heads, head_dim).
        call_arguments: positions of query, key, value and mask in the attention call.
        flat_heads: the points hold (batch * heads, seq, head_dim), served per head.
        rotary_output: where the family transforms the rotated queries and keys again
            before the attention call (a per-head norm after rotary, a position-dependent
            query scale): the call that applies rotary and returns ``(queries, keys)``,
            e.g. ``Called("apply_rotary_pos_emb")``. `rotated_queries`/`rotated_keys` stay
            the attention call's arguments, what enters softmax(QKᵀ): rotary's output
            transformed. Declare it also where rotary scales as well as rotates (YaRN
            multiplies cos and sin by its attention factor). The suite then checks that
            this call receives `queries`/`keys` exactly and returns vectors of the same
            norms times sqrt(cos² + sin²) (its third and fourth arguments) where that is
            one number per position; in a layer where the call does not run, they are
            compared with the attention call's arguments.
    """

    output_projection: str
    attention_call: Optional[Called] = None
    queries: Optional[Point] = None
    keys: Optional[Point] = None
    values: Optional[Point] = None
    fused_projection: Optional[str] = None
    fused_layout: str = "blocks"
    refuse: Optional[Refusal] = None
    seq_first: tuple[str, ...] = ()
    module: Optional[str] = None
    flat_heads: bool = False
    call_arguments: tuple[int, int, int, int] = (1, 2, 3, 4)
    rotary_output: Optional[Called] = None

    def problems(self) -> list[str]:
        found = []
        labelled = [p for p in (self.queries, self.keys, self.values) if p is not None]
        if self.fused_projection is None and len(labelled) != 3:
            found.append("declare `queries`, `keys` and `values` (all three), or `fused_projection`")
        if self.fused_projection is not None and labelled:
            found.append("declare either `queries`/`keys`/`values` or `fused_projection`, not both")
        for name in ("queries", "keys", "values"):
            if getattr(self, name) is not None:
                found += points.problems(getattr(self, name), name)
        for name in ("attention_call", "rotary_output"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Called):
                found.append(f"`{name}` must be nnrosetta.Called(...), got {getattr(self, name)!r}")
        if self.rotary_output is not None and self.attention_call is None:
            found.append("`rotary_output` says what the attention call's queries and keys were rotated from; "
                         "it needs `attention_call`")
        for name in ("output_projection",) + (("fused_projection",) if self.fused_projection is not None else ()):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                found.append(f"`{name}` must be a non-empty module path, got {value!r}")
        for name in self.seq_first:
            if name not in ("queries", "keys", "values"):
                found.append(f"`seq_first` names {name!r}; it may name queries, keys, values")
        if len(self.call_arguments) != 4 or not all(isinstance(p, int) for p in self.call_arguments):
            found.append("`call_arguments` gives four positions: query, key, value, mask")
        if self.fused_layout not in FUSED_LAYOUTS:
            found.append(f"`fused_layout` must be one of {FUSED_LAYOUTS}, got {self.fused_layout!r}")
        return found + _refusal_problems(self.refuse)


#: The names `MoESpec.router_returns` must place, once each, in the router's output tuple.
ROUTER_OUTPUT_NAMES = ("logits", "weights", "indices")

#: A `MoESpec.router_returns` entry for an output value nnrosetta does not read (any number of them).
ROUTER_OUTPUT_OTHER = "other"

#: The router output forms `MoESpec.router_returns` may declare (as sorted names, ``"other"`` left out).
ROUTER_OUTPUT_FORMS = {
    ("indices", "logits", "weights"): "a tuple holding logits, top-k weights and top-k indices",
    ("dense_weights", "logits"): "a tuple holding logits and (tokens, num_experts) weights, zero off the chosen experts",
    ("logits",): "the logits tensor alone, or a tuple whose other values are not the top-k as chosen; the top-k is "
    "read at the experts call (top_k_at_experts) or inside the router (top_k_in_router)",
}

#: What a zero-computation expert (`MoESpec.zero_experts_key`) hands back for a token.
ZERO_EXPERT_OUTPUTS = {
    "input": "the token's input times its weight (an identity expert, LongCat)",
    "zero": "nothing: it adds zero whatever its weight (a skip expert, ZAYA)",
}


@dataclass(frozen=True)
class MoESpec:
    """How a family's mixture-of-experts block routes tokens.

    Fields:
        router: path from the layer's ``mlp`` module to the router module.
        experts: path from ``mlp`` to the experts module (stacked expert weights); ``""``
            when the block itself holds them (JetMoE's ``input_linear``/``output_linear``).
        router_returns: what the router's output holds, position by position, one of
            `ROUTER_OUTPUT_FORMS`: ``"logits"`` (tokens, num_experts), ``"weights"`` and
            ``"indices"`` (tokens, k); or ``"logits"`` with ``"dense_weights"`` (tokens,
            num_experts), zero off the chosen experts (Llama 4); or ``("logits",)``: the
            router returns the logits tensor alone (DBRX). ``"other"`` marks a position
            nnrosetta does not read (a dispatch layout, a state for the next layer's router):
            ``("other", "other", "other", "other", "logits")``.
        top_k_at_experts: positions ``(indices, weights)`` of the top-k in the experts
            module's call, when the router does not return them; the top-k is then read
            and written there.
        top_k_in_router: a `TopKInRouter`: the top-k is read at points of the router's
            forward, for a router that returns it regrouped or rewritten, and written at
            its declared points (or at the router's output). Read ``router_top_k[i]``
            before ``routers_output[i]`` then: the points run before the router returns.
        distinct_experts: a token's k slots must name k different experts (the router
            counts each chosen expert once per token, e.g. with a scatter into a one-hot
            matrix): a written top-k that repeats an expert in a token is refused, and
            forcing a token to one expert gives its other slots other experts at weight 0.
        num_experts_key: config key (dotted for nested configs, or ``(config) -> int``)
            holding the number of experts a token can be routed to.
        experts_per_token_key: config key (or function) holding k, the experts each token uses.
        normalize_top_k: whether the family renormalises the k chosen weights to sum
            to 1; a bool, the name of the config attribute that says so, or a function
            ``(config) -> bool``. Expert ablation renormalises the remaining weights
            exactly when this is true.
        top_k_scale_key: config key (or ``(config) -> float``) of a factor the chosen
            weights are multiplied by after renormalisation (DeepSeek V3's
            ``routed_scaling_factor``): they then sum to it, and ablation keeps that sum.
        shared_experts: path from ``mlp`` to an always-on shared expert, if the family has one.
        routing: how the experts are chosen from the logits (`Routing`), so the suite
            can recompute the choice.
        expert_by_hand: how one routed expert computes (`ExpertByHand`), so the suite
            can compute it without the family's code.
        routed_output_scale_key: config key (or ``(config) -> float``) of a factor the block
            multiplies the routed experts' weighted sum by after the experts run (Laguna's
            ``moe_routed_scaling_factor``); None when the weights are all there is.
        zero_experts_key: config key (or ``(config) -> int``) holding the number of
            zero-computation experts: indices num_experts - zero .. num_experts - 1 have
            no parameters and hand back what `zero_experts_output` says.
        zero_experts_output: a key of `ZERO_EXPERT_OUTPUTS`: ``"input"``, the token's input
            times the weight (LongCat's identity experts), or ``"zero"``, nothing (ZAYA's
            skip expert).
        zero_experts_passed_as: the expert index a choice of a zero-computation expert is
            handed to the experts module as, with weight 0, where that module takes no such
            index (ZAYA's router hands a skip choice on as expert 0); a written top-k is handed
            on the same way. None: handed on as it is.
        output_norm: path from ``mlp`` to a norm the block applies to its whole output (the
            routed experts' sum plus the shared experts) before returning it, so the block's
            output is ``norm(routed + shared)``, not the sum (A.X K1's ``post_mlp_layernorm``);
            None when the block returns the sum.
        recorded_logits: ``(routers per MoE layer, this router's place among them)`` in the
            model's own ``output_router_logits=True`` output, which records every router of
            the router's class in call order: ``(2, 1)`` where each layer's attention mixture
            routes first with the same router class (JetMoE); ``(1, 0)`` otherwise.
    """

    router: str = "gate"
    experts: str = "experts"
    router_returns: tuple[str, ...] = ROUTER_OUTPUT_NAMES
    top_k_at_experts: Optional[tuple[int, int]] = None
    top_k_in_router: Optional[TopKInRouter] = None
    distinct_experts: bool = False
    num_experts_key: Union[str, Callable[["PretrainedConfig"], int]] = "num_local_experts"
    experts_per_token_key: Union[str, Callable[["PretrainedConfig"], int]] = "num_experts_per_tok"
    normalize_top_k: Union[bool, str, Callable[["PretrainedConfig"], bool]] = True
    top_k_scale_key: Union[None, str, Callable[["PretrainedConfig"], float]] = None
    shared_experts: Optional[str] = None
    routing: Routing = Routing()
    expert_by_hand: ExpertByHand = ExpertByHand()
    routed_output_scale_key: Union[None, str, Callable[["PretrainedConfig"], float]] = None
    zero_experts_key: Union[None, str, Callable[["PretrainedConfig"], int]] = None
    zero_experts_output: str = "input"
    zero_experts_passed_as: Optional[int] = None
    output_norm: Optional[str] = None
    recorded_logits: tuple[int, int] = (1, 0)

    def problems(self) -> list[str]:
        """What is malformed in this declaration (empty when it is well formed)."""
        found = []
        if self.output_norm is not None and (not isinstance(self.output_norm, str) or not self.output_norm):
            found.append(f"output_norm must be a module path from mlp, got {self.output_norm!r}")
        named = [name for name in self.router_returns if name != ROUTER_OUTPUT_OTHER]
        form = tuple(sorted(named))
        if form not in ROUTER_OUTPUT_FORMS or len(set(named)) != len(named):
            found.append(
                f"router_returns is {tuple(self.router_returns)!r}; it must be one of these forms, in the "
                f"order the router returns them ({ROUTER_OUTPUT_OTHER!r} marking values not read): "
                f"{'; '.join(f'{k} ({v})' for k, v in ROUTER_OUTPUT_FORMS.items())}"
            )
        in_router = self.top_k_in_router
        if in_router is not None and not isinstance(in_router, TopKInRouter):
            found.append(f"top_k_in_router must be a TopKInRouter, got {in_router!r}")
            in_router = None
        if in_router is not None and self.top_k_at_experts is not None:
            found.append("declare the top-k at the experts call (top_k_at_experts) or inside the router "
                         "(top_k_in_router), not both")
        writes_inside = in_router is not None and bool(in_router.written)
        if form == ("logits",) and self.top_k_at_experts is None and not writes_inside:
            found.append("router_returns holds no top-k to read or write: declare top_k_at_experts=(indices "
                         "position, weights position), or top_k_in_router with its written points")
        if in_router is not None:
            found += in_router.problems()
        for name in ("router", "experts"):
            if not isinstance(getattr(self, name), str) or (name == "router" and not self.router):
                found.append(f"{name} must be a {'non-empty ' if name == 'router' else ''}string, got {getattr(self, name)!r}")
        if self.experts == "" and self.top_k_at_experts is not None:
            found.append("top_k_at_experts reads the experts module's call, so experts must name a child of mlp")
        for name in ("num_experts_key", "experts_per_token_key"):
            value = getattr(self, name)
            if not callable(value) and (not isinstance(value, str) or not value):
                found.append(f"{name} must be a config key or (config) -> int, got {value!r}")
        if not isinstance(self.normalize_top_k, (bool, str)) and not callable(self.normalize_top_k):
            found.append(f"normalize_top_k must be a bool, a config key or (config) -> bool, got {self.normalize_top_k!r}")
        if not isinstance(self.distinct_experts, bool):
            found.append(f"distinct_experts must be a bool, got {self.distinct_experts!r}")
        if self.zero_experts_output not in ZERO_EXPERT_OUTPUTS:
            found.append(f"zero_experts_output must be one of {tuple(ZERO_EXPERT_OUTPUTS)}, got {self.zero_experts_output!r}")
        elif self.zero_experts_output != "input" and self.zero_experts_key is None:
            found.append("zero_experts_output says what zero-computation experts return; it needs zero_experts_key")
        passed_as = self.zero_experts_passed_as
        if passed_as is not None and (not isinstance(passed_as, int) or isinstance(passed_as, bool) or passed_as < 0):
            found.append(f"zero_experts_passed_as must be an expert index (int >= 0) or None, got {passed_as!r}")
        elif passed_as is not None and self.zero_experts_key is None:
            found.append("zero_experts_passed_as says how zero-computation experts are handed on; it needs zero_experts_key")
        recorded = self.recorded_logits
        if not (isinstance(recorded, tuple) and len(recorded) == 2 and all(isinstance(v, int) for v in recorded)
                and recorded[0] >= 1 and 0 <= recorded[1] < recorded[0]):
            found.append(f"recorded_logits must be (routers per layer >= 1, this router's place 0..n-1), got {recorded!r}")
        return found + self.routing.problems() + self.expert_by_hand.problems()

    def position(self, name: str) -> int:
        """Where ``name`` (logits, weights, indices, dense_weights) sits in the router's output."""
        return self.router_returns.index(name)

    @property
    def bare_logits(self) -> bool:
        """Whether the router returns the logits tensor alone, not a tuple."""
        return tuple(self.router_returns) == ("logits",)


@dataclass(frozen=True)
class Span:
    """A standard sublayer that is no single module: the input of ``start``, the output of ``end``.

    OPT's MLP is ``fc1`` ... ``fc2`` (no module wraps the two); BERT-style layers split
    it into ``intermediate`` ... ``output.dense``. Paths are relative to the layer.
    ``mlps_input[i]`` is then ``start``'s input and ``mlps_output[i]`` ``end``'s output.
    """

    start: str
    end: str

    def problems(self) -> list[str]:
        return [
            f"span `{name}` must be a non-empty module path, got {getattr(self, name)!r}"
            for name in ("start", "end")
            if not isinstance(getattr(self, name), str) or not getattr(self, name)
        ]


#: How a layer adds its sublayers to the residual stream.
RESIDUAL_KINDS = {
    "sequential": "h = h + attn(norm(h)); h = h + mlp(norm(h)) (pre-norm, Llama)",
    "parallel": "h = h + attn(norm(h)) + mlp(norm'(h)) (GPT-J, GPT-NeoX with use_parallel_residual, Falcon)",
    "sandwich": "h = h + post_norm(attn(norm(h))); h = h + post_norm'(mlp(norm'(h))) (Gemma 2/3)",
    "post_norm": "h = norm(h + attn(h)); h = norm'(h + mlp(h)) (BERT, OPT-350m): nothing is added as is",
}


@dataclass(frozen=True)
class LayerTensor:
    """A parameter or buffer of the layer, by dotted path from it (``"input_residual"``, ``"attention.dense_bias"``).

    As a residual scale it multiplies (broadcast) the value it scales; as a residual term it is
    added. Where the attribute is None on a layer (a bias only the last layer has), the scale is
    1 and the term 0 there; where the layer has no such attribute, the declaration is wrong.
    """

    path: str

    def problems(self) -> list[str]:
        if isinstance(self.path, str) and self.path:
            return []
        return [f"LayerTensor path must be a non-empty path from the layer, got {self.path!r}"]


#: A factor in a residual add: None (1), a number, a config key (dotted), a `LayerTensor`,
#: or ``(config, layer_index) -> float`` where it depends on the layer's depth.
Scale = Union[None, float, str, LayerTensor, Callable[["PretrainedConfig", int], float]]
#: Something a layer adds to the residual stream beside a standard sublayer: a module's output
#: (path from the layer, ``"shared_mlp"``) or a parameter or buffer (`LayerTensor`).
Term = Union[str, LayerTensor]

_SCALE_FIELDS = ("attention_skip", "mlp_skip", "attention_scale", "mlp_scale", "output_scale")
_TERM_FIELDS = ("attention_skip_terms", "attention_terms", "mlp_skip_terms", "mlp_terms", "layer_terms")


def _scale_problems(name: str, value: object) -> list[str]:
    if value is None or callable(value) or (isinstance(value, str) and value):
        return []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return []
    if isinstance(value, LayerTensor):
        return [f"`{name}`: {problem}" for problem in value.problems()]
    return [f"`{name}` must be a number, a config key, a LayerTensor or (config, layer_index) -> float, got {value!r}"]


def _term_problems(name: str, value: object) -> list[str]:
    if not isinstance(value, tuple):
        return [f"`{name}` must be a tuple of module paths or LayerTensors, got {value!r}"]
    found = []
    for term in value:
        if isinstance(term, LayerTensor):
            found += [f"`{name}`: {problem}" for problem in term.problems()]
        elif not (isinstance(term, str) and term):
            found.append(f"`{name}` holds {term!r}; each term is a module path from the layer or a LayerTensor")
    return found


@dataclass(frozen=True)
class Residual:
    """How each layer adds its attention and MLP outputs to the residual stream.

    The conformance suite (``residual_sum``) checks this against the live model. For
    ``sequential`` and ``sandwich`` layers, with ``A`` the attention's output and ``M`` the MLP's
    (each after its post norm for a sandwich)::

        h = attention_skip * (layers_input + sum(attention_skip_terms)) + attention_scale * (A + sum(attention_terms))
        h = mlp_skip * (h + sum(mlp_skip_terms)) + mlp_scale * (M + sum(mlp_terms))
        layers_output = output_scale * (h + sum(layer_terms))

    and for ``parallel`` layers ``h = attention_skip * layers_input + attention_scale * (A + ...)
    + mlp_scale * (M + ...)``, then the same last line. ``post_norm`` adds nothing as is, so only
    the sublayers' token-mixing properties are checked. Every factor left None is 1.

    Fields:
        kind: one of `RESIDUAL_KINDS`.
        attention_post_norm, mlp_post_norm: a sandwich's post norms (paths from the layer).
        scale_key: config key (or ``(config) -> float``) of one factor on both sublayers' outputs
            (Granite's ``residual_multiplier``); declare it or the per-sublayer scales, not both.
        attention_skip, mlp_skip: a `Scale` on the stream itself before each sublayer's add
            (Doge's learned ``LayerTensor("input_residual")``, a depth-scaled residual).
        attention_scale, mlp_scale: a `Scale` on what each sublayer adds, where the two differ
            or depend on the layer.
        attention_terms, mlp_terms: `Term`s the layer adds together with that sublayer's output,
            inside its scale: a shared MLP beside the routed block (``"shared_mlp"``), a bias the
            attention returns for the layer to add (``LayerTensor("attention.dense_bias")``).
        attention_skip_terms, mlp_skip_terms: `Term`s added to the stream itself inside its skip
            scale, before the sublayer's add: a learned affine skip ``(h + b) * s`` (ZAYA's
            ``LayerTensor("post_mlp_residual_scale.residual_bias")``).
        layer_terms: `Term`s added after the MLP's add (a third branch: ``"post_per_layer_input_norm"``).
        output_scale: a `Scale` on the layer's whole sum (``LayerTensor("layer_scalar")``).
    """

    kind: str = "sequential"
    attention_post_norm: Optional[str] = None
    mlp_post_norm: Optional[str] = None
    scale_key: Optional[str] = None
    attention_skip: Scale = None
    mlp_skip: Scale = None
    attention_scale: Scale = None
    mlp_scale: Scale = None
    attention_terms: tuple[Term, ...] = ()
    mlp_terms: tuple[Term, ...] = ()
    attention_skip_terms: tuple[Term, ...] = ()
    mlp_skip_terms: tuple[Term, ...] = ()
    layer_terms: tuple[Term, ...] = ()
    output_scale: Scale = None

    def problems(self) -> list[str]:
        found = []
        if self.kind not in RESIDUAL_KINDS:
            found.append(f"residual kind must be one of {', '.join(RESIDUAL_KINDS)}, got {self.kind!r}")
        if self.kind == "sandwich" and not (self.attention_post_norm and self.mlp_post_norm):
            found.append("a sandwich residual names `attention_post_norm` and `mlp_post_norm` (paths from the layer)")
        for name in _SCALE_FIELDS:
            found += _scale_problems(name, getattr(self, name))
        for name in _TERM_FIELDS:
            found += _term_problems(name, getattr(self, name))
        if self.scale_key is not None and (self.attention_scale is not None or self.mlp_scale is not None):
            found.append("declare `scale_key` (one factor on both sublayers) or `attention_scale`/`mlp_scale`, "
                         "not both")
        if self.kind == "parallel" and (self.mlp_skip is not None or self.mlp_skip_terms):
            found.append("a parallel residual adds both sublayers to one stream: declare its skip scale and "
                         "terms as `attention_skip`/`attention_skip_terms`, not `mlp_skip`/`mlp_skip_terms`")
        if self.kind == "post_norm" and self.adds_more:
            found.append("a post_norm residual adds nothing as is: skip scales, sublayer scales and terms do not apply")
        return found

    @property
    def adds_more(self) -> bool:
        """Whether the layer's sum has more than its two sublayers' outputs, each times `scale_key`."""
        return any(getattr(self, name) is not None for name in _SCALE_FIELDS) or any(
            getattr(self, name) for name in _TERM_FIELDS
        )

    @property
    def module_terms(self) -> tuple[str, ...]:
        """The terms that are module outputs (read in a trace), in forward order of their fields."""
        return tuple(term for name in _TERM_FIELDS for term in getattr(self, name) if isinstance(term, str))
