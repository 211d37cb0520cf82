// Entry of the demo page served at / by cmd/framewire. Bundled by esbuild
// into web/dist/app.js (+ app.css) by `make web`.
import { createRoot } from "react-dom/client";
import { App } from "./App.jsx";
import "./app.css";

createRoot(document.getElementById("root")).render(<App />);
