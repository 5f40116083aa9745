"""web: the HTTP server and the pages people see. Thin: each event calls one service method.

    server     the FastAPI app: the three pages, the login form, the JSON chat API, health and readiness
    chat       the customer chat page at /
    staff/     the staff page, one module per tab: inbox, live conversations, answers, templates, import,
               discover (proposed intents), gaps (what the bot could not answer)
    admin/     the admin page, one module per tab: retrain, versions and reports, dashboard, users, audit
    common     the role check every staff and admin handler makes, and how errors show
    format     pure helpers: timestamps, numbers, durations as people read them
    report     a model version's evaluation report (tables and the confusion-matrix picture)
    dashboard  the dashboard's figures: messages per day, routes, ratings, top intents, gap topics

May import: anything in csbot. The only layer that imports gradio, fastapi, starlette or matplotlib.
Must not import: torch, transformers or a database driver directly (the models are nlu's, the
rows the store's); a page holds no business rule, it calls the service that owns it.
tests/test_layers.py checks these rules.
"""
