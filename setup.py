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
    ],
    extras_require={
        "onnx": ["tf2onnx", "onnxruntime"],
        "tensorboard": ["tensorboard"],
        # tensorboard: the test suite checks the logs that train writes with it.
        "dev": ["pytest", "pytest-xdist", "ruff", "scipy", "scikit-learn", "tensorboard"],
    },
    entry_points={"console_scripts": ["kerasseg=kerasseg_cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
