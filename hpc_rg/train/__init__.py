"""The training home: DeepSpeed engines, their checkpoints and the training loops.

This package is the only place that imports ``deepspeed``. :mod:`.engine` builds the
DeepSpeed configuration, quiets its logging, owns the process group and runs one engine
(resume, loop, collective stop, clean teardown); :mod:`.checkpoints` writes and reads
kill-safe DeepSpeed checkpoints; :mod:`.cnn_loop` and :mod:`.flow_loop` are the optimizer
loops of the two super-resolution methods; :mod:`.model_output` writes a trained model on
rank 0 with the error reported on every rank.
"""
