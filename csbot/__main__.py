from csbot.cli import main

if __name__ == "__main__":  # not when a spawned training process imports this module (distributed.py)
    raise SystemExit(main())
