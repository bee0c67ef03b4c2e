"""Reading images with trained classifiers and measuring what the models do: ``reading`` (the one batched
reader, and image files as a classifier's training images were prepared), ``metrics`` (a classifier against
true attributes), ``digits`` and ``faces`` (a generator, read by a judge) and ``steering`` (``eval steer``)."""
