"""The notebooks' Rust kernel: evcxr_jupyter, behind a thin Jupyter-protocol relay.

    home.py       the kernel home: evcxr's and cargo's settings, locked work directories
    launch.py     starting evcxr, and a pool's evcxr as a process
    relay.py      the relay: messages passed through, changed where a student would trip;
                  it holds a manager and channels (jupyter_client's cut)
    manager.py    evcxr's process: started or adopted from the pool, ended
    channels.py   the sockets: the frontend's (bound), evcxr's (connected), signing
    display.py    display ids (display_data, then update_display_data)
    messages.py   panics, errors and lost state as the student reads them
    progress.py   the crates compiling for a cell, shown in it
    pool.py       warm kernels claimed by new relays
    __main__.py   the command line: -f (a kernel), --prebuild, --pool

evcxr's own `:cache` is not used: it never caches a path dependency such as mlp-core,
and it has no locking between kernels; the slots (home.py) take its place.
"""
