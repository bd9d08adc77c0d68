"""Every workaround of a library's internals, in one place.

Each is a named function or constant with a why-comment naming the library
version it was written for, and a canary test in tests/compat/ that fails
with one line naming it when the library stops behaving as it assumes:

- `trl.forward_kept`: TRL's trainers leave a fused-LM-head `forward` on the model (trl 1.16).
- `trl.model_loss_on_cpu`: SFTTrainer's chunked loss bypassed on the CPU (trl 1.16).
- `trl.REFERENCE_ADAPTER`, `trl.check_reference_clone`, `trl.drop_reference_clone`: DPO's
  cloned "ref" adapter (trl 1.16, peft 0.21).
- `tqdm.quiet`: TRL's DPO reference pass reads `TQDM_DISABLE` (trl 1.16).
- `datasets.shared_from_list`: `Dataset.from_list` backed by a shared folder, for DPO's
  reference cache across processes (trl 1.16, datasets 5.2).
- `transformers.repeat_cache_rows`, `transformers.select_cache_rows`: `StaticCache` layer
  tensors reassigned (transformers 5.x).
- `transformers.point_tensorboard_at`: `TensorBoardCallback.logging_dir` set after the fact
  (transformers 5.x).
- `transformers.gguf_tensor_processors`: the private `transformers.modeling_gguf_pytorch_utils`
  (transformers 5.x).

Submodules are imported where used: importing this package imports no library.
"""
