"""Stack config, composition of the components, mock engine, and the offline render and diff."""
