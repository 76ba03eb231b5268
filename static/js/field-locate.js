/* Renewal Atlas: "where am I" for the field page (ui/locate.py), a Streamlit component (components v2).
   One large button; a tap asks the browser for its position (navigator.geolocation: GPS on a phone) and
   hands {lon, lat, accuracy, at} — or {error, detail} — to Python as the component's "position" state.
   Nothing is loaded from elsewhere: this file is all there is. Labels come from Python (data.labels). */
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const labels = (data && data.labels) || {};
  let button = parentElement.querySelector('button.ratlas-locate');
  if (!button) {
    button = document.createElement('button');
    button.type = 'button';
    button.className = 'ratlas-locate';
    button.setAttribute('data-testid', 'ratlas-locate');
    parentElement.appendChild(button);
  }
  button.textContent = labels.locate || 'Locate';
  button.disabled = false;
  const fail = (error, detail) => {
    button.disabled = false;
    button.textContent = labels.locate || 'Locate';
    setStateValue('position', { error: error, detail: String(detail || ''), at: Date.now() });
  };
  button.onclick = () => {
    if (!window.isSecureContext || !navigator.geolocation) {
      fail('insecure', '');
      return;
    }
    button.disabled = true;
    button.textContent = labels.locating || '…';
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        button.disabled = false;
        button.textContent = labels.locate || 'Locate';
        setStateValue('position', {
          lon: pos.coords.longitude, lat: pos.coords.latitude,
          accuracy: pos.coords.accuracy, at: Date.now(),
        });
      },
      (err) => fail(err.code === 1 ? 'denied' : (err.code === 3 ? 'timeout' : 'unavailable'), err.message),
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 });
  };
}
