"""Datasets: MNIST and CelebA downloaded, checked, imported and prepared, offline stand-ins for both, and your
own folders of images.

Free of imports: the CLI reads the names and defaults below while building ``--help``. The data commands as
calls are in ``latentctl.data.datasets``.
"""

DATASETS = ("mnist", "celeba")  # what can be downloaded and checked
IMPORTABLE = ("celeba",)  # what can be imported from files the user has, and prepared
IMPORT_SOURCES = ("celeba", "folder")  # what `data import` takes: CelebA, or any folder of images (named --name)
SYNTHETIC = {"digits": "mnist", "faces": "celeba"}  # each synthetic set, and the dataset it stands in for
CELEBA_SOURCES = ("auto", "official", "hub")  # where `download celeba` gets CelebA from
# The public CelebA mirror on the Hub that --source hub reads: img_align+identity+attr/{train,valid,test}-*.parquet
# with an image column, celeb_id and the 40 attributes as booleans.
HUB_REPO = "flwrlabs/celeba"
SYNTH_FACES = 20_000  # faces `synth faces` draws
SYNTH_TRAIN_DIGITS, SYNTH_TEST_DIGITS = 60_000, 10_000  # MNIST's own split sizes
PREPARED_SIZE, PREPARED_CROP = 64, 178  # the prepared cache's image side, and the square cut from CelebA's 178 px
