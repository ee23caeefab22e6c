"""Training of the music language models (see DESIGN.md, "Train step").

loop.train(config, run_dir)            train or exactly resume a run directory
checkpoint.restore_run(run_dir)        a trained run's config, model, params, encoding, styles (for sampling)
steps.train_step / steps.eval_step     the pure jit-compiled steps; state.TrainState, state.make_optimizer
data.load_lm_data / data.TrainBatches  LM windows and batches; mesh.make_mesh / shard_batch (data parallelism)
"""
