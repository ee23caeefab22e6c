"""The style task: a classifier of musical style, its out-of-style rule, and what is built on its embeddings.

config.py      StyleConfig and its checks                     data.py   labelled windows, balanced batches
model.py       the window encoders (conv / GRU) and the head  steps.py  model build, weighted loss, train step
task.py        StyleTask (hooks for musejax.train.fit), train_classifier, restore_style_run
embeddings.py  piece embeddings, the per-style Gaussians and the out-of-style distance (array maths)
report.py      calibration and the test report after training
shifts.py      texture shifts (melody only, chords added, grids, note values) of NoteSequences and rolls;
               harmony.py the skyline, key and chords they use; texture.py the texture a piece shows
classify.py    classify pieces with a trained run               recommend.py  similar pieces from a corpus index
"""
