from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
exec((here / "kerasseg" / "version.py").read_text(), version)

setup(
    name="kerasseg",
    version=version["__version__"],
    description="Semantic segmentation models, datasets, losses and metrics for Keras 3",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["kerasseg", "kerasseg.*"]),
    # The console script's entry point, outside the package so that it can import kerasseg
    # without TensorFlow (kerasseg --help and kerasseg models answer at once).
    py_modules=["kerasseg_cli"],
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "numpy",
        "opencv-python-headless",
        "matplotlib",
        "pillow",
        # COCO masks (polygons, RLE) and COCO box/mask AP for instance segmentation.
        "pycocotools",
        # Superpixels (SLIC, Felzenszwalb) and skeletons for weak supervision.
        "scikit-image",
    ],
    extras_require={
        "onnx": ["tf2onnx", "onnxruntime"],
        "tensorboard": ["tensorboard"],
        # keras-hub: its SegFormer presets, converted by kerasseg.from_keras_hub (never imported
        # by `import kerasseg`; it pulls tensorflow-text, ~200 MB, so it stays optional).
        "keras-hub": ["keras-hub>=0.32"],
        # tensorboard: the test suite checks the logs that train writes with it; keras-hub: the
        # tests of the conversion.
        "dev": [
            "pytest",
            "pytest-xdist",
            "ruff",
            "scipy",
            "scikit-learn",
            "tensorboard",
            "keras-hub>=0.32",
        ],
    },
    entry_points={"console_scripts": ["kerasseg=kerasseg_cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
