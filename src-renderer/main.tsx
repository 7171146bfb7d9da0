// Entry point: pick the transport, wire the stores, render.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { followHash } from './stores/nav';
import { startStores } from './stores/start';
import { createApi } from './transport/create-api';
import './styles.css';

startStores(createApi());
followHash();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
