"""The multitrack GAN task (MuseGAN-style bars of 5 instrument tracks).

config.py  GanConfig and its checks     data.py   bars and batches
model.py   generator and discriminator  steps.py  the pure D / G steps (WGAN-GP or minimax)
task.py    GanTask (hooks for musejax.train.fit) and train_gan(config, run_dir)
run.py     optimizers and restoring a run   sample.py  samples to MIDI + PNG
"""
