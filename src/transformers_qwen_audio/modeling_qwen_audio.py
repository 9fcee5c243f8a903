"""Qwen-Audio as a native transformers model.

Architecture (arXiv 2311.07919): a Whisper-large-v2 encoder with 2x average pooling (transformers' Qwen2-Audio
encoder layers), a linear projection, and a Qwen-7B decoder (transformers' Qwen2 decoder layers with the original's
dynamic NTK rotary scaling and log-n query scaling at inference). The whole span from `<audio>` to `</audio>`
inclusive is replaced by [audio-bos embedding, encoder outputs, audio-eos embedding].

What differs from transformers' Qwen2-Audio:

* the encoder runs only on the frames that hold audio (the original's trimming), not on a blind 30 s window;
* all clips of one sequence are encoded as one padded batch trimmed to that sequence's longest clip, as the
  original does (the conv at a short clip's edge sees that padding), while clips of different sequences never
  affect each other, so a batch gives exactly what each sequence gives alone;
* position ids come from the attention mask, so left padding does not shift the rotary positions.
"""


import copy
import math
from collections.abc import Callable

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPast,
    BaseModelOutputWithPooling,
    CausalLMOutputWithPast,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, slice_logits_to_keep
from transformers.models.qwen2.modeling_qwen2 import (
    Qwen2Attention,
    Qwen2DecoderLayer,
    Qwen2Model,
    Qwen2RMSNorm,
    Qwen2RotaryEmbedding,
    apply_rotary_pos_emb,
    eager_attention_forward,
)
from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder, Qwen2AudioMultiModalProjector
from transformers.models.whisper.modeling_whisper import sinusoids
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_qwen_audio import QwenAudioConfig, QwenAudioEncoderConfig, QwenAudioTextConfig
from .transformers_internals import _compute_mask_indices

ENDOFTEXT_ID, IM_START_ID, IM_END_ID = 151643, 151644, 151645

# --------------------------------------------------------------------------------------------------------------
# Lengths: how many frames and tokens a clip of `mel_length` log-mel frames gives (the original's arithmetic).
# --------------------------------------------------------------------------------------------------------------


def conv_output_lengths(mel_lengths: torch.Tensor) -> torch.Tensor:
    """Frames after conv1 (stride 1) and conv2 (stride 2), both kernel 3, padding 1."""
    return (mel_lengths - 1) // 2 + 1


def audio_token_lengths(mel_lengths: torch.Tensor) -> torch.Tensor:
    """Encoder output tokens after the 2x average pooling (the span holds two more: audio bos and eos)."""
    return (conv_output_lengths(mel_lengths) - 2) // 2 + 1


def clip_mel_lengths(input_features: torch.Tensor, feature_attention_mask, audio_config) -> torch.Tensor:
    """Each clip's mel length: the mask's sum, or the whole feature length up to 30 s without a mask."""
    if feature_attention_mask is not None:
        return feature_attention_mask.long().sum(-1)
    full_length = min(input_features.shape[-1], 2 * audio_config.max_source_positions)
    return torch.full((input_features.shape[0],), full_length, dtype=torch.long, device=input_features.device)


def clip_trim_frames(mel_lengths: torch.Tensor, sequence_ids: torch.Tensor) -> torch.Tensor:
    """The mel frames each clip's encoding reads: the original trims the clips of one prompt to 2x the longest
    one's frames after the convs, so a short clip's conv edge sees the padded frames up to that length."""
    frames_after_conv = conv_output_lengths(mel_lengths)
    longest_in_sequence = torch.zeros(int(sequence_ids.max()) + 1, dtype=torch.long, device=mel_lengths.device)
    longest_in_sequence = longest_in_sequence.scatter_reduce(0, sequence_ids, frames_after_conv, reduce="amax")
    return 2 * longest_in_sequence[sequence_ids]


# --------------------------------------------------------------------------------------------------------------
# Audio encoder
# --------------------------------------------------------------------------------------------------------------


class QwenAudioEncoder(Qwen2AudioEncoder):
    """Whisper encoder that processes only the frames that hold audio.

    `forward(input_features, feature_attention_mask, sequence_ids)`: clips that share a `sequence_ids` value are
    encoded as the original encodes the clips of one prompt (one padded batch trimmed to their longest clip, so a
    short clip's conv edge sees the padded mel frames up to that length); clips of different sequences are
    independent. Padded frames are zeroed after the positional embedding and masked as keys.
    """

    config: QwenAudioEncoderConfig
    _keys_to_ignore_on_load_missing = [r"embed_positions\.weight"]

    def __init__(self, config: QwenAudioEncoderConfig):
        super().__init__(config)
        # Fixed sinusoids (never trained, absent from the released checkpoints): computed in `_init_weights`.
        self.embed_positions.requires_grad_(False)

    def _init_weights(self, module):
        if module is self.embed_positions:
            init.copy_(module.weight, sinusoids(*module.weight.shape))
        else:
            super()._init_weights(module)

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_features: torch.Tensor,
        feature_attention_mask: torch.Tensor | None = None,
        sequence_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(clips, num_mel_bins, frames)`):
            Log-mel features of each clip, padded past its end (as `WhisperFeatureExtractor` pads up to 3000 frames).
        feature_attention_mask (`torch.Tensor` of shape `(clips, frames)`, *optional*):
            1 on the frames that hold audio; each clip's mel length is its sum. Without it every clip is full length.
        sequence_ids (`torch.LongTensor` of shape `(clips,)`, *optional*):
            Which sequence each clip belongs to; clips of one sequence are encoded together (default: all of them).

        Returns a `BaseModelOutput` whose `last_hidden_state` is `(clips, tokens, d_model)`, padded past each clip's
        `audio_token_lengths(mel_length)` tokens.
        """
        num_clips = input_features.shape[0]
        device = input_features.device
        mel_lengths = clip_mel_lengths(input_features, feature_attention_mask, self.config).to(device)
        if sequence_ids is None:
            sequence_ids = torch.zeros(num_clips, dtype=torch.long, device=device)
        frames_after_conv = conv_output_lengths(mel_lengths)
        trim_frames = clip_trim_frames(mel_lengths, sequence_ids)
        batch_frames = int(trim_frames.max())

        hidden_states = input_features[:, :, :batch_frames].to(dtype=self.conv1.weight.dtype)
        if self.training and self.config.apply_spec_augment:
            hidden_states = self._mask_input_features(hidden_states, mel_lengths)
        if bool((trim_frames < batch_frames).any()):
            # Frames past a sequence's own trim length are what conv padding would see there: zeros.
            frame_index = torch.arange(batch_frames, device=device)
            beyond_trim = (frame_index[None, :] >= trim_frames[:, None])[:, None, :]
            hidden_states = hidden_states.masked_fill(beyond_trim, 0.0)

        hidden_states = nn.functional.gelu(self.conv1(hidden_states))
        hidden_states = nn.functional.gelu(self.conv2(hidden_states))
        hidden_states = hidden_states.permute(0, 2, 1)
        seq_len = hidden_states.shape[1]
        hidden_states = (hidden_states + self.embed_positions.weight[:seq_len]).to(hidden_states.dtype)

        attention_mask = None
        padding = torch.arange(seq_len, device=device)[None, :] >= frames_after_conv[:, None]
        if bool(padding.any()):  # full clips (30 s) need neither zeroing nor a mask: keep SDPA's unmasked path
            hidden_states = hidden_states.masked_fill(padding[..., None], 0.0)
            # Additive key mask [clips, 1, queries, keys]; finfo.min instead of -inf keeps padded query rows finite.
            key_mask = torch.zeros(padding.shape, dtype=hidden_states.dtype, device=device)
            key_mask = key_mask.masked_fill(padding, torch.finfo(hidden_states.dtype).min)
            attention_mask = key_mask[:, None, None, :].expand(-1, 1, seq_len, -1)
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)

        for encoder_layer in self.layers:
            hidden_states = encoder_layer(hidden_states, attention_mask, **kwargs)

        hidden_states = self.avg_pooler(hidden_states.permute(0, 2, 1)).permute(0, 2, 1)
        hidden_states = self.layer_norm(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states)

    def _mask_input_features(self, features: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """SpecAugment as `WhisperModel._mask_input_features` (its mask sampler, its config fields): time spans
        within each clip's own frames and mel-bin spans are set to 0. Out of place: the caller's features stay."""
        num_clips, num_bins, num_frames = features.shape
        config = self.config
        if config.mask_time_prob > 0:
            frames = (torch.arange(num_frames, device=features.device)[None, :] < mel_lengths[:, None]).long()
            time_mask = _compute_mask_indices((num_clips, num_frames), mask_prob=config.mask_time_prob,
                                              mask_length=config.mask_time_length, attention_mask=frames,
                                              min_masks=config.mask_time_min_masks)
            features = features.masked_fill(torch.as_tensor(time_mask, device=features.device)[:, None, :], 0.0)
        if config.mask_feature_prob > 0:
            bin_mask = _compute_mask_indices((num_clips, num_bins), mask_prob=config.mask_feature_prob,
                                             mask_length=config.mask_feature_length,
                                             min_masks=config.mask_feature_min_masks)
            features = features.masked_fill(torch.as_tensor(bin_mask, device=features.device)[:, :, None], 0.0)
        return features


# --------------------------------------------------------------------------------------------------------------
# Decoder: Qwen2 layers + the original's dynamic NTK and log-n attention (inference only, past `seq_length`)
# --------------------------------------------------------------------------------------------------------------


def dynamic_ntk_alpha(prompt_lengths: torch.Tensor, seq_length: int) -> list[float]:
    """The original's `get_ntk_alpha`: 2 ** ceil(log2(L / seq_length) + 1) - 1, at least 1."""
    alphas = []
    for length in prompt_lengths.tolist():
        context_value = math.log(max(length, 1) / seq_length, 2) + 1
        alphas.append(float(max(2 ** math.ceil(context_value) - 1, 1)))
    return alphas


class QwenAudioRotaryEmbedding(Qwen2RotaryEmbedding):
    """Qwen2 rotary embedding with the original's dynamic NTK: base * alpha ** (dim / (dim - 2)), one alpha per row."""

    def ntk_inv_freq(self, alpha: float, device) -> torch.Tensor:
        dim = self.inv_freq.shape[0] * 2
        base = self.config.rope_parameters["rope_theta"] * alpha ** (dim / (dim - 2))
        return 1.0 / (base ** (torch.arange(0, dim, 2, device=device).float() / dim))

    def forward(self, x, position_ids, ntk_alphas: list[float] | None = None):
        if ntk_alphas is None or all(alpha == 1.0 for alpha in ntk_alphas):
            return super().forward(x, position_ids)
        inv_freq = torch.stack([self.ntk_inv_freq(alpha, x.device) for alpha in ntk_alphas])  # [batch, dim / 2]
        if position_ids.shape[0] != inv_freq.shape[0]:
            position_ids = position_ids.expand(inv_freq.shape[0], -1)
        freqs = position_ids[..., None].float() * inv_freq[:, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype=x.dtype), emb.sin().to(dtype=x.dtype)


def logn_query_scale(position_ids: torch.Tensor, seq_length: int) -> torch.Tensor:
    """The original's log-n attention: queries at position p (0-based) scale by log_seq_length(p + 1) past seq_length
    (and by exactly 1 before it). Computed on the device, without a host sync."""
    positions = (position_ids + 1).double()
    scale = torch.where(positions > seq_length, torch.log(positions) / math.log(seq_length), torch.ones_like(positions))
    return scale[:, None, :, None].float()  # [batch, 1 (heads), queries, 1]


# The decoder leaves the prompt's NTK alphas on the cache at prefill (`None`: all 1); the attribute's presence marks
# a cache whose prompt is already in, for caches that keep their length on the device (StaticCache).
PROMPT_STATE = "qwen_audio_ntk_alphas"


def keeps_no_length(cache) -> bool:
    """Whether `cache` packs several requests and keeps no length of its own: transformers' `PagedAttentionCache` of
    continuous batching (`generate_batch`, `transformers serve`), which has no `get_seq_length`. Requests are then told
    apart by their positions, which restart at 0 for each."""
    return cache is not None and not hasattr(cache, "get_seq_length")


def host_cache_length(cache: Cache | None) -> int | None:
    """The cached length when the host knows it without a device sync (DynamicCache), else None (StaticCache, and
    the paged cache of continuous batching)."""
    if cache is None:
        return 0
    if keeps_no_length(cache):
        return None
    length = cache.get_seq_length()
    return None if isinstance(length, torch.Tensor) else length


def host_max_key_length(cache: Cache | None, query_length: int) -> int | None:
    """A host-side bound on the key length after this forward (the cached length plus the queries, or a static
    cache's capacity); every position produced from an attention mask or the cache is below it. None: unbounded."""
    length = host_cache_length(cache)
    if length is not None:
        return length + query_length
    if keeps_no_length(cache):
        return None
    capacity = cache.get_max_length()
    return capacity if capacity > 0 else None


def is_prefill(cache: Cache | None) -> bool:
    """Whether this forward brings the prompt of one generation, decided on the host: from the cached length where
    the host knows it, else from the prompt state the decoder leaves on the cache at prefill. Never under continuous
    batching (`keeps_no_length`): a packed forward mixes prompt chunks and decoding steps of several requests, so
    nothing is kept per generation (no NTK alphas: dynamic NTK past `seq_length` is not applied there) and each
    token's log-n scale comes from its own position."""
    if keeps_no_length(cache):
        return False
    length = host_cache_length(cache)
    if length is not None:
        return length == 0
    return not hasattr(cache, PROMPT_STATE)


class QwenAudioAttention(Qwen2Attention):
    """Qwen2 attention (qkv bias, no o_proj bias) that applies the log-n query scale given by the decoder."""

    def forward(self, hidden_states, position_embeddings, attention_mask, cache=None, logn_scale=None, **kwargs):
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)

        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
        if logn_scale is not None:
            query_states = query_states * logn_scale.to(query_states.dtype)

        if cache is not None:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx, kwargs=kwargs)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.o_proj(attn_output), attn_weights


class QwenAudioDecoderLayer(Qwen2DecoderLayer):
    def __init__(self, config: QwenAudioTextConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.self_attn = QwenAudioAttention(config=config, layer_idx=layer_idx)


class QwenAudioPreTrainedModel(PreTrainedModel):
    config: QwenAudioConfig
    base_model_prefix = "model"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["Qwen2AudioEncoderLayer", "QwenAudioDecoderLayer"]
    _skip_keys_device_placement = "cache"
    _supports_sdpa = True
    _supports_flash_attn = False  # the encoder's padded-frame key mask is an additive 4D mask
    _supports_flex_attn = False
    _supports_attention_backend = True
    _keys_to_ignore_on_load_missing = [r"embed_positions\.weight"]

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, QwenAudioRotaryEmbedding):
            inv_freq, _ = module.compute_default_rope_parameters(module.config)
            init.copy_(module.inv_freq, inv_freq)
            init.copy_(module.original_inv_freq, inv_freq)

    def save_pretrained(self, *args, save_original_format: bool = False, **kwargs):
        """Native key names by default; `save_original_format=True` writes the released `transformer.*` layout."""
        if save_original_format:
            text_config = getattr(self.config, "text_config", self.config)
            heads, kv_heads = text_config.num_attention_heads, text_config.num_key_value_heads
            if kv_heads is not None and kv_heads != heads:
                raise ValueError(
                    f"save_original_format=True cannot write this model: the released layout fuses q, k and v into "
                    f"one `c_attn` of 3 x hidden_size rows, which has no room for {kv_heads} key/value heads with "
                    f"{heads} query heads. Save it in the native format (save_original_format=False)."
                )
        return super().save_pretrained(*args, save_original_format=save_original_format, **kwargs)


class QwenAudioTextModel(QwenAudioPreTrainedModel, Qwen2Model):
    """Qwen-7B decoder: Qwen2 layers, plus dynamic NTK and log-n attention in eval mode past `seq_length`."""

    config: QwenAudioTextConfig
    input_modalities = ("text",)
    _can_record_outputs = {"hidden_states": QwenAudioDecoderLayer, "attentions": QwenAudioAttention}

    def __init__(self, config: QwenAudioTextConfig):
        QwenAudioPreTrainedModel.__init__(self, config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(
            [QwenAudioDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = QwenAudioRotaryEmbedding(config=config)
        self.gradient_checkpointing = False
        self.has_sliding_layers = False
        self.post_init()

    def _ntk_alphas(self, cache, position_ids, query_length: int, prefill: bool) -> list[float] | None:
        """The original computes alpha once from the prompt length, then keeps it for every cached decoding step.

        Unlike the original (which measures the padded length) each row gets the alpha of its own true length (its
        last position + 1), so that a padded batch reproduces each sequence alone. The alphas live on the cache of
        that generation; the decision is taken on the host at prefill (no device value is read while decoding, and
        none at prefill while the prompt cannot pass `seq_length`). `None` means alpha 1 for every row.
        """
        if not prefill:
            return getattr(cache, PROMPT_STATE, None)
        alphas = None
        if not self.training and self.config.use_dynamic_ntk:
            bound = host_max_key_length(cache, query_length) if cache is not None else query_length
            if bound is None or bound > self.config.seq_length:
                alphas = dynamic_ntk_alpha(position_ids.max(-1).values + 1, self.config.seq_length)
                alphas = None if all(alpha == 1.0 for alpha in alphas) else alphas
        if cache is not None:
            setattr(cache, PROMPT_STATE, alphas)
        return alphas

    def _logn_scale(self, cache, position_ids, query_length: int) -> torch.Tensor | None:
        """Log-n query scale, or None where the host knows that no position passes `seq_length` (the original
        decides from the key length too)."""
        if self.training or not self.config.use_logn_attn:
            return None
        bound = host_max_key_length(cache, query_length) if cache is not None else query_length
        if bound is not None and bound <= self.config.seq_length:
            return None
        return logn_query_scale(position_ids, self.config.seq_length)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        query_length = inputs_embeds.shape[1]
        prefill = is_prefill(cache)
        if position_ids is None:
            position_ids = positions_from_attention_mask(attention_mask, cache, query_length, inputs_embeds.device)

        ntk_alphas = self._ntk_alphas(cache, position_ids, query_length, prefill)
        logn_scale = self._logn_scale(cache, position_ids, query_length)

        if not isinstance(causal_mask := attention_mask, dict):
            causal_mask = create_causal_mask(
                config=self.config,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                cache=cache,
                position_ids=position_ids,
            )
        else:
            causal_mask = causal_mask["full_attention"]

        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids, ntk_alphas)
        for decoder_layer in self.layers:
            hidden_states = decoder_layer(
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                logn_scale=logn_scale,
                **kwargs,
            )
        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, cache=cache if use_cache else None)


def positions_from_attention_mask(attention_mask, cache, query_length: int, device) -> torch.Tensor:
    """Rotary positions that ignore left padding: position = number of real tokens before this one."""
    past_length = host_cache_length(cache) or 0
    if isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 2:
        position_ids = attention_mask.long().cumsum(-1) - 1
        position_ids = position_ids.masked_fill(attention_mask == 0, 0)
        return position_ids[:, -query_length:].to(device)
    return (torch.arange(query_length, device=device) + past_length).unsqueeze(0)


# --------------------------------------------------------------------------------------------------------------
# Audio + text
# --------------------------------------------------------------------------------------------------------------


def locate_audio_spans(
    is_start: torch.Tensor, is_end: torch.Tensor, audio_start_id: int, audio_end_id: int
) -> tuple[torch.Tensor, ...]:
    """Spans from `<audio>` to `</audio>` given where each stands: (mask over span positions, row, start and length
    of each span). Raises a `ValueError` naming the row (and the two token ids) for an unclosed, unopened or nested
    span. The model and the training collator both find spans with it."""
    depth = is_start.long().cumsum(-1) - is_end.long().cumsum(-1)
    bad_rows = ((depth < 0) | (depth > 1)).any(-1) | (depth[:, -1] != 0)
    if bad_rows.any():
        row = int(bad_rows.nonzero()[0])
        raise ValueError(
            f"Row {row} of input_ids has unbalanced audio spans: every <audio> (id {audio_start_id}) must be "
            f"closed by </audio> (id {audio_end_id}) before the next one opens ({int(is_start[row].sum())} "
            f"opened, {int(is_end[row].sum())} closed)."
        )
    span_mask = (depth > 0) | is_end
    starts = is_start.nonzero()
    ends = is_end.nonzero()
    return span_mask, starts[:, 0], starts[:, 1], ends[:, 1] - starts[:, 1] + 1


class QwenAudioMultiModalProjector(Qwen2AudioMultiModalProjector):
    """The original's `proj`: encoder width -> decoder width, after the encoder's final layer norm."""


class QwenAudioModel(QwenAudioPreTrainedModel):
    def __init__(self, config: QwenAudioConfig):
        super().__init__(config)
        self.audio_tower = QwenAudioEncoder(config.audio_config)
        self.multi_modal_projector = QwenAudioMultiModalProjector(config)
        # Row 0 opens every audio span, row 1 closes it (the original's `audio_bos_eos_token`).
        self.audio_boundary_embeddings = nn.Embedding(2, config.text_config.hidden_size)
        self.language_model = QwenAudioTextModel(config.text_config)
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def audio_boundaries(
        self, input_ids: torch.LongTensor | None, inputs_embeds: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Where `<audio>` and `</audio>` stand: from `input_ids`, or without them from the embeddings of those two
        tokens in `inputs_embeds` (as transformers' `get_placeholder_mask` finds placeholders)."""
        start_id, end_id = self.config.audio_start_id, self.config.audio_end_id
        if input_ids is not None:
            return input_ids == start_id, input_ids == end_id
        boundary_ids = torch.tensor([start_id, end_id], device=inputs_embeds.device)
        start_embedding, end_embedding = self.get_input_embeddings()(boundary_ids).to(inputs_embeds.dtype)
        return (inputs_embeds == start_embedding).all(-1), (inputs_embeds == end_embedding).all(-1)

    def audio_spans(self, is_start: torch.Tensor, is_end: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every `<audio> ... </audio>` span, given where `<audio>` and `</audio>` stand (`audio_boundaries`):
        (mask over span positions, row, start and length of each span). Raises a `ValueError` naming the row for an
        unclosed, unopened or nested span. The training collator masks its labels with it."""
        return locate_audio_spans(is_start, is_end, self.config.audio_start_id, self.config.audio_end_id)

    @can_return_tuple
    def get_audio_features(
        self,
        input_features: torch.FloatTensor,
        feature_attention_mask: torch.Tensor | None = None,
        audio_sequence_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple | BaseModelOutputWithPooling:
        r"""Encode clips into the embeddings that replace their `<audio> ... </audio>` spans.

        input_features (`torch.FloatTensor` of shape `(clips, num_mel_bins, frames)`):
            Log-mel features, as the processor returns them.
        feature_attention_mask (`torch.Tensor` of shape `(clips, frames)`, *optional*):
            1 on each clip's audio frames.
        audio_sequence_ids (`torch.LongTensor` of shape `(clips,)`, *optional*):
            Which sequence each clip belongs to: clips of one sequence are encoded together as the original did,
            sequences stay independent (default: all clips belong to one sequence).

        Returns a `BaseModelOutputWithPooling` (a tuple with `return_dict=False`): `last_hidden_state` is the encoder
        output `(clips, tokens, d_model)` (padded past each clip's tokens), `pooler_output` the projected span
        embeddings `(sum of span lengths, hidden_size)`, [audio-bos, tokens, audio-eos] per clip in order: exactly the
        rows that fill the span positions of `input_ids`. `hidden_states` / `attentions` are the encoder's, when
        `output_hidden_states` / `output_attentions` ask for them.

        Example:

        ```python
        >>> import torch
        >>> from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
        >>> config = QwenAudioConfig(
        ...     text_config=dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        ...                      num_attention_heads=4, num_key_value_heads=4),
        ...     audio_config=dict(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32),
        ...     audio_start_id=100, audio_token_id=99)
        >>> model = QwenAudioForConditionalGeneration(config).eval()
        >>> features, mask = torch.randn(1, 80, 3000), torch.zeros(1, 3000, dtype=torch.long)
        >>> mask[:, :100] = 1  # one second of audio
        >>> outputs = model.get_audio_features(features, mask)
        >>> outputs.last_hidden_state.shape, outputs.pooler_output.shape  # 25 audio tokens + audio bos and eos
        (torch.Size([1, 25, 16]), torch.Size([27, 32]))

        ```
        """
        check_audio_features(input_features, feature_attention_mask, self.config.audio_config)
        return self._encode_audio(input_features, feature_attention_mask, audio_sequence_ids, **kwargs)

    def _encode_audio(self, input_features, feature_attention_mask, audio_sequence_ids, **kwargs):
        encoder_outputs = self.audio_tower(
            input_features, feature_attention_mask, audio_sequence_ids, return_dict=True, **kwargs
        )
        audio_embeds = self.multi_modal_projector(encoder_outputs.last_hidden_state)
        token_lengths = audio_token_lengths(
            clip_mel_lengths(input_features, feature_attention_mask, self.config.audio_config)
        )
        bos, eos = self.audio_boundary_embeddings.weight.to(audio_embeds.dtype)
        spans = []
        for clip_embeds, length in zip(audio_embeds, token_lengths.tolist()):
            spans.extend((bos[None], clip_embeds[:length], eos[None]))
        return BaseModelOutputWithPooling(
            last_hidden_state=encoder_outputs.last_hidden_state,
            pooler_output=torch.cat(spans),
            hidden_states=encoder_outputs.hidden_states,
            attentions=encoder_outputs.attentions,
        )

    def get_placeholder_mask(
        self, input_ids, inputs_embeds, input_features, feature_attention_mask, position_ids=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask of the audio spans (found in `input_ids`, or in `inputs_embeds` without them), after checking they
        agree with the clips given; and the sequence of each clip (its row, or with packed rows whose positions
        restart at 0 per request, its request), which `get_audio_features` takes as `audio_sequence_ids`."""
        span_mask, span_rows, span_starts, span_lengths = self.audio_spans(
            *self.audio_boundaries(input_ids, inputs_embeds)
        )
        num_clips = input_features.shape[0]
        if span_rows.numel() != num_clips:
            raise ValueError(
                f"input_ids hold {span_rows.numel()} audio spans but {num_clips} clips were given in input_features"
            )
        mel_lengths = clip_mel_lengths(input_features, feature_attention_mask, self.config.audio_config)
        expected = audio_token_lengths(mel_lengths.to(span_lengths.device)) + 2
        mismatch = (expected != span_lengths).nonzero()
        if mismatch.numel():
            clip = int(mismatch[0])
            raise ValueError(
                f"Audio span {clip} (row {int(span_rows[clip])}) has {int(span_lengths[clip])} tokens but its clip of "
                f"{int(mel_lengths[clip])} mel frames needs {int(expected[clip])} (<audio> + audio tokens + </audio>)"
            )
        sequence_ids = span_rows
        if position_ids is not None and position_ids.dim() == 2:
            # Packed requests (vLLM packs a batch into one row): a new request starts wherever the position is 0.
            requests = (position_ids == 0).long().cumsum(-1).expand(span_mask.shape[0], -1)
            keys = span_rows * (span_mask.shape[1] + 1) + requests[span_rows, span_starts]
            sequence_ids = torch.unique(keys, return_inverse=True)[1]
        return span_mask.unsqueeze(-1).expand_as(inputs_embeds), sequence_ids

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        r"""The decoder's hidden states, with each `<audio> ... </audio>` span filled by its clip (see
        [`QwenAudioForConditionalGeneration.forward`] for the arguments). Inputs are checked once, at prefill: a
        decoding step reads no value from the device."""
        if input_ids is None and inputs_embeds is None:
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        prefill = is_prefill(cache)
        if input_ids is not None:
            check_input_ids(input_ids, self.config.text_config.vocab_size, check_values=prefill)
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        if input_features is not None and keeps_no_length(cache):
            raise NotImplementedError(
                "Continuous batching (generate_batch) runs text-only requests here: transformers' paged scheduler "
                "does not yet hand a model each request's clips. Use generate() for audio."
            )
        if input_features is not None and prefill:
            # Checked before the spans are matched to the clips, so that a malformed clip is named as such.
            check_audio_features(input_features, feature_attention_mask, self.config.audio_config)
            span_mask, sequence_ids = self.get_placeholder_mask(
                input_ids, inputs_embeds, input_features, feature_attention_mask, position_ids
            )
            audio_embeds = self.get_audio_features(
                input_features, feature_attention_mask, audio_sequence_ids=sequence_ids
            ).pooler_output
            inputs_embeds = inputs_embeds.masked_scatter(span_mask, audio_embeds.to(inputs_embeds))
        elif input_ids is not None and prefill and (input_ids == self.config.audio_start_id).any():
            raise ValueError(
                "input_ids hold <audio> spans but no input_features were given: pass the clips' log-mel features "
                "(the processor returns them as `input_features` and `feature_attention_mask`)"
            )

        return self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )


class QwenAudioForConditionalGeneration(QwenAudioPreTrainedModel, GenerationMixin):
    """Qwen-Audio / Qwen-Audio-Chat: `model(input_ids, attention_mask, input_features, feature_attention_mask, labels)`.

    `input_features` [clips, n_mels, frames] lists the clips in the order their spans appear, row by row through
    the batch; `feature_attention_mask.sum(-1)` is each clip's mel length (samples // 160, at most 3000).
    """

    _tied_weights_keys = {}
    _can_compile_fullgraph = True  # the decoding step reads no device value (checks and NTK/log-n run at prefill)
    # Kept in 16 bits when quantizing (full module paths): the audio encoder and projection are small and sensitive,
    # lm_head is the output layer. Used as `llm_int8_skip_modules` / torchao's skipped modules by `quantization_config`.
    _modules_kept_in_16_bits = ["model.audio_tower", "model.multi_modal_projector", "lm_head"]

    def __init__(self, config: QwenAudioConfig):
        super().__init__(config)
        self.model = QwenAudioModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    @property
    def language_model(self) -> QwenAudioTextModel:
        """The decoder (where vLLM's transformers backend and `get_decoder()` users reach it)."""
        return self.model.language_model

    @property
    def audio_tower(self) -> QwenAudioEncoder:
        return self.model.audio_tower

    @property
    def multi_modal_projector(self) -> QwenAudioMultiModalProjector:
        return self.model.multi_modal_projector

    def get_audio_features(self, *args, **kwargs):
        return self.model.get_audio_features(*args, **kwargs)

    def _expand_inputs_for_generation(self, expand_size=1, is_encoder_decoder=False, input_ids=None, **model_kwargs):
        """Beam search / num_return_sequences copy each row; a row's clips must be copied as one block with it,
        since clips are listed row by row (the default would interleave single clips)."""
        clip_inputs = {
            key: model_kwargs.pop(key)
            for key in ("input_features", "feature_attention_mask")
            if isinstance(model_kwargs.get(key), torch.Tensor)
        }
        inputs_embeds = model_kwargs.get("inputs_embeds")
        if expand_size > 1 and clip_inputs and (input_ids is not None or inputs_embeds is not None):
            # generate(inputs_embeds=...) passes an empty input_ids: the spans are then found in the embeddings
            ids = input_ids if inputs_embeds is None or input_ids.shape[-1] > 0 else None
            clips_per_row = self.model.audio_boundaries(ids, inputs_embeds)[0].sum(-1).tolist()
            if sum(clips_per_row) == next(iter(clip_inputs.values())).shape[0]:
                first_clip = [sum(clips_per_row[:row]) for row in range(len(clips_per_row))]
                order = [
                    clip
                    for row, count in enumerate(clips_per_row)
                    for _ in range(expand_size)
                    for clip in range(first_clip[row], first_clip[row] + count)
                ]
                index = torch.tensor(order, dtype=torch.long, device=next(iter(clip_inputs.values())).device)
                clip_inputs = {key: value.index_select(0, index) for key, value in clip_inputs.items()}
        input_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, input_ids=input_ids, **model_kwargs
        )
        model_kwargs.update(clip_inputs)
        return input_ids, model_kwargs

    @classmethod
    def from_pretrained(cls, *args, quantization_config=None, **kwargs):
        """transformers' `from_pretrained`; a `quantization_config` that names no modules to skip keeps this model's
        `_modules_kept_in_16_bits` (the audio encoder and projection, `lm_head`) unquantized.

        Example:

        ```python
        >>> from transformers import BitsAndBytesConfig, TorchAoConfig
        >>> from torchao.quantization import Int8WeightOnlyConfig
        >>> model = QwenAudioForConditionalGeneration.from_pretrained(  # doctest: +SKIP
        ...     "path/to/native-checkpoint", quantization_config=TorchAoConfig(Int8WeightOnlyConfig()))
        >>> model = QwenAudioForConditionalGeneration.from_pretrained(  # doctest: +SKIP
        ...     "path/to/native-checkpoint", quantization_config=BitsAndBytesConfig(load_in_4bit=True))
        ```
        """
        if quantization_config is not None:
            kwargs["quantization_config"] = keep_modules_unquantized(quantization_config, cls._modules_kept_in_16_bits)
        return super().from_pretrained(*args, **kwargs)

    def adjust_generation_fn(self, *args, **kwargs):
        """`from_pretrained` loads the generation config here: the one place the chat stop ids are written.

        The released generation_config.json only names <|endoftext|>; the original's chat() also stopped at
        <|im_end|> / <|im_start|>. Written into the generation config on load, they are saved with it (and by the
        converter), so `generate`, the pipeline and a served model all stop where the original did."""
        super().adjust_generation_fn(*args, **kwargs)
        add_chat_stop_ids(self.generation_config, self.config)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def prepare_inputs_for_generation(
        self, input_ids, inputs_embeds=None, is_first_iteration: bool | None = False, **kwargs
    ):
        """transformers' inputs (clips only at the first step), after dropping the prompt state a reused static
        cache kept from a previous generation, so its prefill is recognised without reading a device value."""
        cache = kwargs.get("cache")
        if is_first_iteration and cache is not None and hasattr(cache, PROMPT_STATE):
            if int(cache.get_seq_length()) == 0:  # once per generation; a cache that goes on keeps its state
                delattr(cache, PROMPT_STATE)
        return super().prepare_inputs_for_generation(
            input_ids, inputs_embeds=inputs_embeds, is_first_iteration=is_first_iteration, **kwargs
        )

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.FloatTensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch, sequence)`):
            Token ids; each clip stands as a whole `<audio> ... </audio>` span (the processor writes it), which becomes
            [audio-bos, encoder outputs, audio-eos].
        attention_mask (`torch.Tensor` of shape `(batch, sequence)`, *optional*):
            1 on real tokens; position ids follow it, so left padding does not shift the rotary positions.
        input_features (`torch.FloatTensor` of shape `(clips, num_mel_bins, frames)`, *optional*):
            The clips' log-mel features, in the order their spans appear, row by row through the batch.
        feature_attention_mask (`torch.Tensor` of shape `(clips, frames)`, *optional*):
            1 on each clip's audio frames (its sum is the clip's mel length, samples // 160, at most 3000).
        inputs_embeds (`torch.FloatTensor` of shape `(batch, sequence, hidden_size)`, *optional*):
            Instead of `input_ids`; the spans are then found from the embeddings of `<audio>` and `</audio>`.
        labels (`torch.LongTensor` of shape `(batch, sequence)`, *optional*):
            Targets for the causal-LM loss (shifted inside, -100 ignored).

        Example:

        ```python
        >>> import torch
        >>> from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
        >>> from transformers_qwen_audio.modeling_qwen_audio import audio_token_lengths
        >>> config = QwenAudioConfig(
        ...     text_config=dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        ...                      num_attention_heads=4, num_key_value_heads=4),
        ...     audio_config=dict(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32),
        ...     audio_start_id=100, audio_token_id=99)  # the released checkpoints: QwenAudioProcessor writes the ids
        >>> model = QwenAudioForConditionalGeneration(config).eval()
        >>> features, mask = torch.randn(1, 80, 3000), torch.zeros(1, 3000, dtype=torch.long)
        >>> mask[:, :100] = 1  # one second of audio
        >>> span = [100] + [99] * int(audio_token_lengths(mask.sum(-1))) + [101]  # <audio> ... </audio>
        >>> input_ids = torch.tensor([[5, 6] + span + [7]])
        >>> model(input_ids, input_features=features, feature_attention_mask=mask).logits.shape
        torch.Size([1, 30, 128])
        >>> model.generate(input_ids, input_features=features, feature_attention_mask=mask, max_new_tokens=4,
        ...                do_sample=False, pad_token_id=0).shape
        torch.Size([1, 34])

        ```

        With a released checkpoint, `QwenAudioProcessor` builds `input_ids`, `input_features` and
        `feature_attention_mask` from a conversation (`processor.apply_chat_template(...)`) and `processor.decode`
        turns the new tokens into text.
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_features=input_features,
            feature_attention_mask=feature_attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden_states)

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


def add_chat_stop_ids(generation_config, config: QwenAudioConfig) -> None:
    """Stop at <|endoftext|>, <|im_end|> and <|im_start|> when the vocabulary has them (the released one does).
    The released keys `generate()` ignores (`chat_format`, `max_window_size`) stay: the pipeline reads
    `chat_format` to tell a chat checkpoint from a base one."""
    if config.text_config.vocab_size <= IM_START_ID:
        return
    eos = generation_config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    generation_config.eos_token_id = eos + [i for i in (ENDOFTEXT_ID, IM_END_ID, IM_START_ID) if i not in eos]
    if generation_config.pad_token_id is None:
        generation_config.pad_token_id = ENDOFTEXT_ID


def keep_modules_unquantized(quantization_config, modules: list[str]):
    """Fill the modules a quantization config skips when the user named none (`llm_int8_skip_modules` for
    bitsandbytes, `modules_to_not_convert` for torchao and most others). A list given by the user replaces
    transformers' defaults and ours, as transformers documents it. Names match from the start of a module path."""
    is_dict = isinstance(quantization_config, dict)
    for field in ("llm_int8_skip_modules", "modules_to_not_convert"):
        present = field in quantization_config if is_dict else hasattr(quantization_config, field)
        if not present:
            continue
        current = quantization_config.get(field) if is_dict else getattr(quantization_config, field)
        if current is None:
            if is_dict:
                quantization_config = {**quantization_config, field: list(modules)}
            else:  # a copy: the caller's config object may serve another model
                quantization_config = copy.copy(quantization_config)
                setattr(quantization_config, field, list(modules))
        break
    return quantization_config


# --------------------------------------------------------------------------------------------------------------
# Input checks: a clear error that names the problem, never an IndexError from deep inside
# --------------------------------------------------------------------------------------------------------------


def check_input_ids(input_ids, vocab_size: int, check_values: bool = True) -> None:
    """Type, dtype and rank always (host-side); the id range (a device read) only where `check_values` (prefill)."""
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [batch, sequence], got shape {tuple(input_ids.shape)}")
    if check_values and input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab_size):
        raise ValueError(
            f"input_ids hold ids outside the vocabulary [0, {vocab_size}): min {int(input_ids.min())}, "
            f"max {int(input_ids.max())}"
        )


def check_audio_features(input_features, feature_attention_mask, audio_config: QwenAudioEncoderConfig) -> None:
    if not isinstance(input_features, torch.Tensor):
        raise TypeError(f"input_features must be a torch.Tensor, got {type(input_features).__name__}")
    if not input_features.dtype.is_floating_point:
        raise TypeError(f"input_features must be a floating point tensor (log-mel), got dtype {input_features.dtype}")
    if input_features.dim() != 3 or input_features.shape[1] != audio_config.num_mel_bins:
        raise ValueError(
            f"input_features must be [clips, {audio_config.num_mel_bins} mel bins, frames], "
            f"got shape {tuple(input_features.shape)}"
        )
    max_frames = 2 * audio_config.max_source_positions
    if feature_attention_mask is None:
        if input_features.shape[-1] > max_frames:
            raise ValueError(f"input_features have {input_features.shape[-1]} frames, more than {max_frames} (30 s)")
        return
    if not isinstance(feature_attention_mask, torch.Tensor):
        raise TypeError(f"feature_attention_mask must be a torch.Tensor, got {type(feature_attention_mask).__name__}")
    if feature_attention_mask.dim() != 2 or feature_attention_mask.shape[0] != input_features.shape[0]:
        raise ValueError(
            f"feature_attention_mask must be [clips, frames] with {input_features.shape[0]} clips, got shape "
            f"{tuple(feature_attention_mask.shape)}"
        )
    if feature_attention_mask.shape[1] > input_features.shape[-1]:
        raise ValueError(
            f"feature_attention_mask covers {feature_attention_mask.shape[1]} frames but input_features have only "
            f"{input_features.shape[-1]}"
        )
    if feature_attention_mask.dtype.is_floating_point or feature_attention_mask.dtype.is_complex:
        values = feature_attention_mask
        if not ((values == 0) | (values == 1)).all():
            raise ValueError("feature_attention_mask must hold only 0 and 1")
    elif feature_attention_mask.dtype != torch.bool and not (
        (feature_attention_mask == 0) | (feature_attention_mask == 1)
    ).all():
        raise ValueError("feature_attention_mask must hold only 0 and 1")
    mel_lengths = feature_attention_mask.long().sum(-1)
    if (mel_lengths < 1).any():
        raise ValueError(f"clip {int((mel_lengths < 1).nonzero()[0])} has no audio frame in feature_attention_mask")
    if (mel_lengths > max_frames).any():
        raise ValueError(f"a clip has {int(mel_lengths.max())} mel frames, more than {max_frames} (30 s)")
    # The original trims the mel to 2 x (frames after the convs) before the convs: those frames must exist.
    needed = 2 * conv_output_lengths(mel_lengths)
    if int(needed.max()) > input_features.shape[-1]:
        raise ValueError(
            f"input_features have {input_features.shape[-1]} frames but the longest clip needs {int(needed.max())} "
            "(pad the features past the clip, as WhisperFeatureExtractor does up to 3000)"
        )


__all__ = [
    "QwenAudioPreTrainedModel",
    "QwenAudioEncoder",
    "QwenAudioTextModel",
    "QwenAudioModel",
    "QwenAudioForConditionalGeneration",
]
