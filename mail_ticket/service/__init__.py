from . import idle_listener, server
