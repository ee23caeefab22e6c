"""The language-model task: piano-roll LMs (Bernoulli or NADE frames) and event LMs.

config.py  Config (data, model, optim, train, sample, ckpt groups) with its defaults; resolve_config
model.py   the Flax modules (PianoRollLM, EventLM); nade.py the NADE frame distribution
build.py   config + corpus meta -> model, encoding
data.py    LM windows and batches
steps.py   the pure jit-compiled train / eval steps
task.py    LMTask (the hooks for musejax.train.fit) and train(config, run_dir)
restore.py restore_run: a trained run loaded back (sampling, likelihood, evaluation)
sample.py  sampling whole pieces and primer continuations to MIDI
"""
