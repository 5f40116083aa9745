"""dialogue: one customer message to one reply, with the trace of how it was chosen.

    bot        routing: the intent's template when the classifier is confident, else the nearest
               curated answer when it is close enough, else an honest fallback that offers a person
    replies    reply templates: load, validate, render with slot values
    entities   slot values found in a message (order numbers, e-mail addresses, phone numbers)
    answers    the FAISS index of staff-curated answers: build, add, search, save, load
    batching   many threads' single requests answered by one worker in batches
    scrub      personal data out of customer text: typed placeholders, order numbers as the slot
    discovery  intents proposed from unlabelled messages: groups, names, typical examples, draft replies

May import: csbot.errors, csbot.settings, csbot.text, csbot.language, csbot.files, the store (to
record conversations), the serving side of nlu (intents, runtime, tokens), faiss, igraph, scipy and numpy.
Must not import: torch or transformers (a reply never waits for them), the service or web layers.
tests/test_layers.py checks these rules.
"""
