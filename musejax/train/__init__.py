"""The training core every task shares (see DESIGN.md, "One loop").

fit.fit(task, config, run_dir)        the one loop: progress, metrics + TensorBoard, eval cadence, best + latest
                                      Orbax checkpoints, exact resume, Ctrl-C save, NaN guard, multi-host rules
fit.TaskBase / fit.Cadence            what a task (musejax.lm, musejax.gan, musejax.style) supplies
state.TrainState / make_optimizer     the train state and optax optimizer
checkpoint                            Orbax managers, save / restore, resume checks, damaged-checkpoint fallback
mesh.make_mesh / shard_batch          data parallelism on one host or many; initialize_distributed
metrics                               metrics.jsonl and TensorBoard
"""
