"""Built-in features, registered as plugins like any third-party one (as pytest does
with its ``DEFAULT_PLUGINS``): the expression functions, the conflict resolvers, the
executors and the stores. :data:`converge_rules.plugins.DEFAULT_PLUGINS` lists them."""
