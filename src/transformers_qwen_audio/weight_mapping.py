"""Released Qwen-Audio key names -> native modules, as transformers 5 checkpoint conversion transforms.

Registered for `model_type="qwen_audio"` on import (`registration.py`), so `from_pretrained` on the released layout renames and splits
keys while loading (dtype, `device_map` and meta-device loading keep working); `save_pretrained(...,
save_original_format=True)` runs the same transforms backwards.

Released (`transformer.*`)                     native
  audio.conv1 / conv2                          model.audio_tower.conv1 / conv2
  audio.blocks.N.attn.{query,key,value,out}    model.audio_tower.layers.N.self_attn.{q,k,v,out}_proj
  audio.blocks.N.{attn_ln,mlp_ln}              ...self_attn_layer_norm / final_layer_norm
  audio.blocks.N.mlp.{0,2}                     ...fc1 / fc2
  audio.ln_post / audio.proj                   model.audio_tower.layer_norm / model.multi_modal_projector.linear
  audio.audio_bos_eos_token                    model.audio_boundary_embeddings
  wte / ln_f                                   model.language_model.embed_tokens / norm
  h.N.attn.c_attn (fused qkv)                  model.language_model.layers.N.self_attn.{q,k,v}_proj (Chunk)
  h.N.attn.c_proj                              ...self_attn.o_proj
  h.N.mlp.{w2,w1,c_proj}                       ...mlp.{gate,up,down}_proj   (the original computes w1(x) * silu(w2(x)))
  h.N.{ln_1,ln_2}                              ...input_layernorm / post_attention_layernorm
"""

from transformers.core_model_loading import Chunk, ConversionOps, WeightConverter, WeightRenaming

_AUDIO = r"^transformer\.audio\."
_TEXT = r"^transformer\."


def released_checkpoint_conversions() -> list:
    return [
        # audio encoder
        WeightRenaming(_AUDIO + r"blocks\.", "model.audio_tower.layers."),
        WeightRenaming(_AUDIO + r"conv1\.", "model.audio_tower.conv1."),
        WeightRenaming(_AUDIO + r"conv2\.", "model.audio_tower.conv2."),
        WeightRenaming(_AUDIO + r"ln_post\.", "model.audio_tower.layer_norm."),
        WeightRenaming(_AUDIO + r"proj\.", "model.multi_modal_projector.linear."),
        WeightRenaming(_AUDIO + r"audio_bos_eos_token\.", "model.audio_boundary_embeddings."),
        WeightRenaming(r"(audio_tower\.layers\.\d+)\.attn\.query\.", r"\1.self_attn.q_proj."),
        WeightRenaming(r"(audio_tower\.layers\.\d+)\.attn\.key\.", r"\1.self_attn.k_proj."),
        WeightRenaming(r"(audio_tower\.layers\.\d+)\.attn\.value\.", r"\1.self_attn.v_proj."),
        WeightRenaming(r"(audio_tower\.layers\.\d+)\.attn\.out\.", r"\1.self_attn.out_proj."),
        WeightRenaming(r"(audio_tower\.layers\.\d+)\.attn_ln\.", r"\1.self_attn_layer_norm."),
        WeightRenaming(r"(audio_tower\.layers\.\d+)\.mlp_ln\.", r"\1.final_layer_norm."),
        WeightRenaming(r"(audio_tower\.layers\.\d+)\.mlp\.0\.", r"\1.fc1."),
        WeightRenaming(r"(audio_tower\.layers\.\d+)\.mlp\.2\.", r"\1.fc2."),
        # decoder
        WeightRenaming(_TEXT + r"wte\.", "model.language_model.embed_tokens."),
        WeightRenaming(_TEXT + r"ln_f\.", "model.language_model.norm."),
        WeightRenaming(_TEXT + r"h\.", "model.language_model.layers."),
        WeightRenaming(r"(language_model\.layers\.\d+)\.attn\.c_proj\.", r"\1.self_attn.o_proj."),
        WeightRenaming(r"(language_model\.layers\.\d+)\.mlp\.w1\.", r"\1.mlp.up_proj."),
        WeightRenaming(r"(language_model\.layers\.\d+)\.mlp\.w2\.", r"\1.mlp.gate_proj."),
        WeightRenaming(r"(language_model\.layers\.\d+)\.mlp\.c_proj\.", r"\1.mlp.down_proj."),
        WeightRenaming(r"(language_model\.layers\.\d+)\.ln_1\.", r"\1.input_layernorm."),
        WeightRenaming(r"(language_model\.layers\.\d+)\.ln_2\.", r"\1.post_attention_layernorm."),
    ]


class QuantizeEachTensor(ConversionOps):
    """Runs a quantize-on-load op once per tensor, on the tensor's own module. transformers 5.24's torchao op
    quantizes only the first tensor it is given and drops the others (its bitsandbytes ops loop; transformers
    PR 46210 fixed them, not torchao's), so without this a split fused qkv would leave k_proj and v_proj random."""

    def __init__(self, quantize: ConversionOps):
        self.quantize = quantize

    def convert(self, input_dict, full_layer_name=None, **kwargs):
        converted = {}
        for name, tensor in input_dict.items():
            converted.update(self.quantize.convert({name: tensor}, full_layer_name=name, **kwargs))
        return converted


class SplitWeightConverter(WeightConverter):
    """A one-to-many `WeightConverter` whose quantize-on-load op sees one target tensor at a time."""

    __slots__ = ()

    def convert(self, layer_name, model=None, config=None, hf_quantizer=None, loading_info=None):
        quantize = self.quantization_operation
        if quantize is not None:
            self.quantization_operation = QuantizeEachTensor(quantize)
        try:
            return super().convert(layer_name, model=model, config=config, hf_quantizer=hf_quantizer,
                                   loading_info=loading_info)
        finally:
            self.quantization_operation = quantize


def released_decoder_conversions() -> list:
    """The fused qkv split, registered for the decoder sub-model so that it (and its reverse, when saving in the
    original format) is scoped to `model.language_model` and never touches the encoder's q/k/v projections."""
    return [
        SplitWeightConverter(
            source_patterns=r"\.attn\.c_attn\.",
            target_patterns=[r".self_attn.q_proj.", r".self_attn.k_proj.", r".self_attn.v_proj."],
            operations=[Chunk(dim=0)],
        ),
    ]
