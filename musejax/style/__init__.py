"""The style task: a classifier of musical style, its out-of-style rule, and what is built on its embeddings.

task.py        config, model build, step and StyleTask (hooks for musejax.train.fit); train_classifier
model.py       the window encoders (conv / GRU) and the head    data.py  labelled windows, balanced batches
embeddings.py  piece embeddings, the per-style Gaussians and the out-of-style distance (array maths)
report.py      calibration and the test report after training
classify.py    classify pieces with a trained run               recommend.py  similar pieces from a corpus index
"""
