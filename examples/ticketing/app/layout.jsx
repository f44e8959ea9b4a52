export const metadata = {
  title: 'sidewire',
  description: 'sidewire example: real-time channels on the Next.js port',
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: 'system-ui, sans-serif', margin: '2rem', maxWidth: 720 }}>
        {children}
      </body>
    </html>
  );
}
