"""The main window's pages, one module (or package) per page; pages never import each other."""
