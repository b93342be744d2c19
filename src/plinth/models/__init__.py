"""Model packaging: flavors, signatures, ``log_model``, ``load`` and conversion.

A model is a folder with a manifest (``plinth-model.yaml``) naming its flavor, signature,
input example, requirements and metadata, and every file with its sha256.

>>> import plinth
>>> with plinth.start_run():                                                       # doctest: +SKIP
...     info = plinth.models.log_model(pipeline, "model", input_example=X.head())
>>> plinth.models.load("models:/churn@champion").predict(df)                      # doctest: +SKIP

Names load on first use, so ``import plinth.models`` imports no ML library.
"""

from plinth.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    globals(),
    {
        "plinth.models.sdk": ["ModelInfo", "fetch", "load", "log_model"],
        "plinth.models.packaging": ["load_folder", "save_model"],
        "plinth.models.loaded": ["LoadedModel"],
        "plinth.models.signature": ["ColumnSpec", "Signature", "TensorSpec", "infer_signature"],
        "plinth.models.flavors.python": ["ModelContext", "PythonModel"],
        "plinth.models.conversion": ["ConversionResult", "convert"],
        "plinth.models.manifest": ["Manifest"],
    },
)
