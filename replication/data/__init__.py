"""Datasets (paper Section 2): where they come from, where they go, how they are decoded.

Every dataset is read from an archive or folder, checked, extracted once into the
writable data root, and decoded once into a uint8 array cache [N, H, W, 3]; later
loads memory-map that cache, so no JPEG is decoded twice.

where things live:
  data root   $REPLICATION_DATA (default: <repo>/data), writable: extracted folders,
              decoded caches (<root>/cache/<variant>/<split>-<size>px.npy), checksum stamps
  mirrors     $REPLICATION_MIRRORS, folders of read-only archives separated by ':'
              (e.g. ../shared/data); archives there are never written to
  ImageNet    $REPLICATION_IMAGENET or --path: a folder with train/<wnid>/ and val/<wnid>/
              (ILSVRC-2012, which you obtain from image-net.org; never extracted by us)
  your images folder:PATH as a dataset name: PATH/train/<class>/ and PATH/val/<class>/, or
              PATH/<class>/ split into train and val by a fixed seed (20% of each class to
              val, seed 0); images of any size and mode (greyscale, CMYK: converted to RGB).
              Class names are the folder names, or the words of a words.txt
              (<id><tab><words>) or LOC_synset_mapping.txt (<id> <words>) in PATH

command line: `python -m replication data {list,prepare,verify}` (replication/cli/data.py,
whose docstring, the text of `python -m replication data --help`, has examples)

Images are resized only when a size other than the native one is asked for, the
way Section 2 of the paper does it: shorter side to the size, then the central
square crop.
"""

# What each module holds (each imports only modules listed above it):
#   registry   the errors, Archive/Variant/DatasetSpec and the DATASETS table, get_spec
#   layouts    the layout parsers (image tree, Tiny ImageNet, CIFAR batches), class names,
#              whether an extracted folder holds a release
#   archives   checksums, atomic extraction, download, locating a release, the not-found message
#   cache      the decode-once uint8 caches and Section 2's resize, choosing a release,
#              prepare, load_split, list_split, FileDataset, image_dataset
#   folders    your own images (folder:PATH): describe_folder (data list), check_folder (data verify)
#   sample     `python -m replication.data.sample`: cuts the committed sample (data/sample/)
#
# The package's public names (and _variant_order, which the tests call), so that
# `from replication import data; data.load_split(...)` reads as it did before the split.
# A test that patches a name patches it in the module that reads it (e.g. data.archives).
from replication.data.archives import Located, extract_archive, locate, verify_archive  # noqa: F401
from replication.data.cache import (CACHE_FORMAT, RESIZE_RULE, FileDataset, ImageSplit, _variant_order,  # noqa: F401
                                    cache_dir, decode_image, folder_fingerprint, identify, image_dataset,
                                    list_split, load_split, prepare, subset_per_class)
from replication.data.folders import check_folder, describe_folder  # noqa: F401
from replication.data.layouts import (IMAGE_EXTENSIONS, IMAGENETTE_WORDS, LAYOUTS, SPLIT_SEED, VAL_FRACTION,  # noqa: F401
                                      Listing, parse_cifar_batches, parse_image_tree, parse_tiny_imagenet,
                                      parse_user_split, parse_user_tree)
from replication.data.registry import (DATASETS, FOLDER_PREFIX, SAMPLE_LABEL, Archive, ChecksumError,  # noqa: F401
                                       CorruptArchiveError, DataError, DatasetNotFoundError, DatasetSpec,
                                       UnknownDatasetError, Variant, canonical_name, folder_spec, get_spec)
from replication.paths import (atomic_file, atomic_write_text, data_root, mirror_dirs, partial_name,  # noqa: F401
                               remove_stale_partials, sample_dir)
